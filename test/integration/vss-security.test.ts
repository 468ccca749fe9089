// Security on one machine, through the real program: a renewed certificate taken on SIGHUP
// without a restart, what is refused counted in the metrics (served on loopback), `up --insecure`
// saying what it is everywhere, and where the CLI finds its key (flags over environment over file).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { issueNodeCertificate, nodeFiles } from "../../src/certs/certs.ts";
import { readVssFile } from "../../src/local/vss.ts";
import { cli, eventually, programCommand, startTestVss, tempDir } from "../support/vss.ts";
import { sharedSecurity, testCredentials } from "../support/security.ts";
import { parsePrometheus } from "../support/prometheus.ts";

let vss: Awaited<ReturnType<typeof startTestVss>>;
let env: Record<string, string>;
beforeAll(async () => {
  vss = await startTestVss({ label: "security", peers: 2, routers: 1, routerArgs: ["--s3-port", "0"] });
  env = { MICTLANX_ROUTERS: vss.routers[0]!.address, MICTLANX_SPM: vss.spm.address };
});
afterAll(async () => {
  await vss?.cleanup();
});

/** The serial number of the certificate a server presents, as a TLS client sees it. */
function servedSerial(address: string): Promise<string> {
  const [host, port] = address.split(":");
  return new Promise((resolve, reject) => {
    // A handshake that never comes (a loaded box, the instant the listener is bound anew) is retried by the caller.
    const timer = setTimeout(() => reject(new Error(`no TLS handshake with ${address} within 5 s`)), 5_000);
    Bun.connect({
      hostname: host!,
      port: Number(port),
      tls: { ca: readFileSync(testCredentials.ca, "utf8"), serverName: host! },
      socket: {
        handshake: (socket) => {
          clearTimeout(timer);
          resolve(String(socket.getPeerCertificate().serialNumber).toLowerCase());
          socket.end();
        },
        data: () => {},
        close: () => reject(new Error(`${address} closed the connection before the handshake`)),
        error: (_socket, error) => reject(error),
      },
    }).catch(reject);
  });
}

describe("certificates rotate", () => {
  test("a renewed certificate is served after SIGHUP, without a restart; connections keep working", async () => {
    try {
      await renewedOnSighup();
    } catch (error) {
      // Say what the router said: a failure here is about a process the test cannot see into.
      const log = existsSync(vss.logFile("router-0")!) ? readFileSync(vss.logFile("router-0")!, "utf8").split("\n").slice(-20).join("\n") : "(no log)";
      throw new Error(`${(error as Error).message}\nrouter-0's log:\n${log}`);
    }
  }, 60_000);
});

async function renewedOnSighup(): Promise<void> {
  {
    const router = vss.routers[0]!;
    let before = "";
    await eventually("the router's certificate is read", 20_000, async () => (before = await servedSerial(router.address)).length > 0);
    await issueNodeCertificate({ dir: sharedSecurity.certsDir, role: "router", id: "router-0", hosts: ["127.0.0.1", "localhost"], days: 7 });
    const renewed = new X509Certificate(readFileSync(nodeFiles(sharedSecurity.certsDir, "router-0").certPath));
    expect(renewed.serialNumber.toLowerCase()).not.toBe(before);
    process.kill(router.pid, "SIGHUP");
    await eventually("the router serves the renewed certificate", 20_000, async () => (await servedSerial(router.address)) === renewed.serialNumber.toLowerCase() || "the old one still");
    // Its S3 endpoint too (a listener of its own, bound again with the new certificate).
    const s3Address = new URL(router.s3Url!).host;
    await eventually("the S3 endpoint serves the renewed certificate", 20_000, async () => (await servedSerial(s3Address)) === renewed.serialNumber.toLowerCase() || "the old one still");
    expect((await fetch(`${router.s3Url}/`, { tls: { ca: readFileSync(testCredentials.ca, "utf8") } })).status).toBe(403); // served, and anonymous: refused
    expect(router.proc.exitCode).toBeNull(); // the same process
    const put = await cli(["put", "rotated/a.txt", "-"], { env, stdin: new TextEncoder().encode("after the renewal") });
    expect(put.code).toBe(0);
    expect((await cli(["get", "rotated/a.txt", "-o", "-"], { env })).stdout).toBe("after the renewal");
    const log = readFileSync(vss.logFile("router-0")!, "utf8");
    expect(log).toContain("SIGHUP: certificate files read again");
    // Renewed for 7 days only: inside the 30 days of warning, which status says and the TUI shows.
    await eventually("status warns of router-0's certificate", 10_000, async () => {
      const status = JSON.parse((await cli(["status", "--json"], { env })).stdout) as { certificateWarnings: string[]; certificates: Array<{ role: string; id: string }> };
      expect(status.certificates.map((entry) => `${entry.role} ${entry.id}`)).toEqual(expect.arrayContaining(["spm spm", "router router-0", "peer peer-0", "peer peer-1"]));
      return status.certificateWarnings.some((line) => line.startsWith("router router-0: its certificate expires in 6 days")) || JSON.stringify(status.certificateWarnings);
    });
    expect((await cli(["status"], { env })).stdout).toContain("certificate  router router-0: its certificate expires in 6 days");
  }
}

describe("refusals are counted, and metrics stay on loopback", () => {
  test("a wrong secret moves mictlanx_router_refused_total{reason=hello}; a missing grant {reason=forbidden}", async () => {
    const url = vss.routers[0]!.metricsUrl!;
    expect(url.startsWith("http://127.0.0.1:")).toBe(true);
    const refused = async (reason: string) => {
      const samples = parsePrometheus(await (await fetch(url)).text());
      return samples.find((sample) => sample.name === "mictlanx_router_refused_total" && sample.labels.reason === reason)?.value ?? -1;
    };
    const hellosBefore = await refused("hello");
    const forbiddenBefore = await refused("forbidden");
    const wrong = await cli(["ls"], { env: { ...env, MICTLANX_CREDENTIALS: "", MICTLANX_ACCESS_KEY: testCredentials.accessKey, MICTLANX_SECRET_KEY: "x".repeat(40), MICTLANX_CA: testCredentials.ca } });
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toContain("or its secret is wrong");
    const reader = JSON.parse((await cli(["key", "create", "--bucket", "only-this", "--json"], { env })).stdout) as { accessKey: string; secretKey: string };
    const denied = await cli(["put", "elsewhere/x", "-"], { env: { ...env, MICTLANX_CREDENTIALS: "", MICTLANX_ACCESS_KEY: reader.accessKey, MICTLANX_SECRET_KEY: reader.secretKey, MICTLANX_CA: testCredentials.ca }, stdin: new Uint8Array(1) });
    expect(denied.code).toBe(3);
    expect(await refused("hello")).toBeGreaterThan(hellosBefore);
    expect(await refused("forbidden")).toBeGreaterThan(forbiddenBefore);
  }, 60_000);
});

describe("where the CLI finds its key", () => {
  test("flags over the environment over --credentials; a wrong one named first is the one used", async () => {
    const dir = tempDir("security-lookup");
    try {
      const bad = join(dir, "bad.json");
      writeFileSync(bad, JSON.stringify({ accessKey: testCredentials.accessKey, secretKey: "y".repeat(40), ca: testCredentials.ca }), { mode: 0o600 });
      // The environment's good key beats a bad --credentials file…
      const envKey = { ...env, MICTLANX_CREDENTIALS: "", MICTLANX_ACCESS_KEY: testCredentials.accessKey, MICTLANX_SECRET_KEY: testCredentials.secretKey, MICTLANX_CA: testCredentials.ca };
      expect((await cli(["ls", "--credentials", bad], { env: envKey })).code).not.toBe(3);
      // …and a bad --secret-key flag beats the environment's good one.
      expect((await cli(["ls", "--secret-key", "z".repeat(40)], { env: envKey })).code).toBe(3);
      // Only a file: it is used.
      expect((await cli(["ls", "--credentials", bad], { env: { ...env, MICTLANX_CREDENTIALS: "" } })).code).toBe(3);
      // A file named that is not there is a usage error naming it.
      const missing = await cli(["ls", "--credentials", join(dir, "none.json")], { env });
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain("none.json does not exist");
      // ./.mictlanx/credentials.json, where up's default dir puts it, is found with nothing else set.
      mkdirSync(join(dir, ".mictlanx"));
      writeFileSync(join(dir, ".mictlanx", "credentials.json"), JSON.stringify(testCredentials), { mode: 0o600 });
      const proc = Bun.spawn([...programCommand(), "ls"], { cwd: dir, env: { ...process.env, ...env, MICTLANX_CREDENTIALS: "" }, stdout: "pipe", stderr: "pipe" });
      expect(await proc.exited).not.toBe(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("--insecure", () => {
  test("every role says so in its ready line", async () => {
    const open = await startTestVss({ label: "security-ready", peers: 1, routers: 1, insecure: true });
    try {
      for (const role of [open.spm, ...open.routers, ...open.peers]) expect(role.readyLine).toContain("(insecure: no TLS, no access keys)");
      for (const role of [vss.spm, ...vss.routers, ...vss.peers]) expect(role.readyLine).not.toContain("insecure");
    } finally {
      await open.cleanup();
    }
  }, 60_000);
});

describe("up --insecure", () => {
  test("says so in its banner, every role's ready line and vss.json; a client without a key works; one with a key is told there is no TLS", async () => {
    const dir = tempDir("security-insecure");
    const proc = Bun.spawn([...programCommand(), "up", "--insecure", "--port", "0", "--peers", "1", "--data", join(dir, "vss")], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, MICTLANX_PARENT_PID: String(process.pid) } });
    let out = "";
    void (async () => {
      for await (const piece of proc.stdout) out += new TextDecoder().decode(piece);
    })();
    try {
      await eventually("up is up", 30_000, () => out.includes("VSS is up") || out);
      expect(out).toContain("INSECURE: no TLS and no access keys");
      const file = readVssFile(join(dir, "vss"));
      expect(file.insecure).toBe(true);
      for (const name of ["spm", "router-0", "peer-0"]) expect(readFileSync(join(dir, "vss", "logs", `${name}.log`), "utf8") + out).not.toContain("needs --tls-cert");
      const plain = { MICTLANX_ROUTERS: file.routers[0]!, MICTLANX_CREDENTIALS: "" };
      const shown = await cli(["status", "--spm", file.spm], { env: plain });
      expect(shown.stdout).toContain("security     INSECURE: no TLS and no access keys");
      expect(JSON.parse((await cli(["status", "--json", "--spm", file.spm], { env: plain })).stdout).insecure).toBe(true);
      const nowhere = tempDir("security-nowhere");
      const put = Bun.spawn([...programCommand(), "put", "open/a.txt", "-", "--rf", "1"], { cwd: nowhere, env: { ...process.env, ...plain }, stdin: new TextEncoder().encode("open"), stdout: "pipe", stderr: "pipe" });
      expect(`${await put.exited} ${await new Response(put.stderr).text()}`).toBe("0 ");
      const keyed = await cli(["ls", "open"], { env: { MICTLANX_ROUTERS: file.routers[0]! } }); // the test's credentials: TLS
      expect(keyed.code).toBe(1);
      expect(keyed.stderr).toContain("does not speak TLS: is it started with --insecure?");
      rmSync(nowhere, { recursive: true, force: true });
    } finally {
      proc.kill("SIGKILL");
      await proc.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
