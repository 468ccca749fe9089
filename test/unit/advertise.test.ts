// --advertise: what other hosts dial, apart from what a role binds. Parsing, the refusal of a
// wildcard bind with nothing to advertise (before anything is bound or created), the address a
// role then reports, the ready line, and the flag in every role's --help.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { advertisedAddressFor, isWildcardHost, joinHostPort, parseAdvertise, resolveAdvertise } from "../../src/lib/advertise.ts";
import { MictlanxError } from "../../src/lib/errors.ts";
import { readyLine } from "../../src/commands/ready.ts";
import { buildProgram } from "../../src/program.ts";
import { runPeerCommand } from "../../src/commands/peer.ts";
import { runRouterCommand } from "../../src/commands/router.ts";
import { runSpmCommand } from "../../src/commands/spm.ts";
import { startPeer } from "../../src/roles/peer/peer.ts";

async function usage(work: () => unknown): Promise<string> {
  try {
    await work();
  } catch (error) {
    expect(error).toBeInstanceOf(MictlanxError);
    expect((error as MictlanxError).code).toBe("usage");
    return (error as MictlanxError).message;
  }
  throw new Error("expected a usage error");
}

describe("parsing --advertise", () => {
  test("host:port, host alone (the port it listens on), IPv6 in brackets", () => {
    expect(parseAdvertise("10.0.0.4:7210")).toEqual({ host: "10.0.0.4", port: 7210 });
    expect(parseAdvertise(" node-4.example:1 ")).toEqual({ host: "node-4.example", port: 1 });
    expect(parseAdvertise("10.0.0.4")).toEqual({ host: "10.0.0.4" });
    expect(parseAdvertise("[fd00::4]:7210")).toEqual({ host: "fd00::4", port: 7210 });
    expect(parseAdvertise("[fd00::4]")).toEqual({ host: "fd00::4" });
  });
  test("nonsense, port 0 or out of range, and a wildcard to advertise are usage errors that say what to write", async () => {
    for (const bad of ["", ":7210", "10.0.0.4:", "10.0.0.4:0", "10.0.0.4:65536", "fd00::4:7210", "a b:1", "x:y"]) {
      expect(await usage(() => parseAdvertise(bad))).toContain("HOST:PORT");
    }
    for (const wildcard of ["0.0.0.0:7210", "[::]:7210", "0.0.0.0"]) {
      expect(await usage(() => parseAdvertise(wildcard))).toContain("names every address");
    }
  });
  test("wildcard hosts", () => {
    for (const host of ["0.0.0.0", "::", "[::]", "", " ", "0:0:0:0:0:0:0:0"]) expect(isWildcardHost(host)).toBe(true);
    for (const host of ["127.0.0.1", "10.0.0.4", "::1", "localhost", "0.0.0.1"]) expect(isWildcardHost(host)).toBe(false);
  });
});

describe("a wildcard bind without --advertise", () => {
  test("is refused with the role, the flag to pass and an example on the role's port", async () => {
    const message = await usage(() => resolveAdvertise("peer", "0.0.0.0", undefined, 7210));
    expect(message).toBe(
      "peer: --host 0.0.0.0 listens on every address, which no other host can dial; pass --advertise HOST:PORT, the address others should use (e.g. --advertise 10.0.0.4:7210)",
    );
    expect(await usage(() => resolveAdvertise("router", "::", "  ", 0))).toStartWith("router: --host :: listens on every address");
    expect(await usage(() => resolveAdvertise("spm", "", undefined, 7200))).toContain('spm: --host "" listens on every address');
  });
  test("is fine with one; a named host needs none", () => {
    expect(resolveAdvertise("peer", "0.0.0.0", "10.0.0.4:7210", 7210)).toEqual({ host: "10.0.0.4", port: 7210 });
    expect(resolveAdvertise("peer", "10.0.0.4", undefined, 7210)).toBeUndefined();
    expect(resolveAdvertise("peer", "10.0.0.4", "203.0.113.9:17210", 7210)).toEqual({ host: "203.0.113.9", port: 17210 });
  });
  test("each role's command refuses it before it creates or binds anything", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mictlanx-advertise-"));
    try {
      const peerFlags = { port: "0", data: join(dir, "peer"), host: "0.0.0.0", capacity: "1GiB", shardSize: "64MiB", compactionInterval: "30s", scrubRate: "off", scrubInterval: "1h" };
      expect(await usage(() => runPeerCommand(peerFlags))).toContain("peer: --host 0.0.0.0");
      expect(await usage(() => runRouterCommand({ port: "0", host: "0.0.0.0", spm: "127.0.0.1:7200" }))).toContain("router: --host 0.0.0.0");
      expect(await usage(() => runSpmCommand({ port: "0", host: "::", data: join(dir, "spm") }))).toContain("spm: --host ::");
      expect(existsSync(join(dir, "peer"))).toBe(false);
      expect(existsSync(join(dir, "spm"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test("a role started as a library refuses it too, before it opens its data dir", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mictlanx-advertise-"));
    try {
      expect(await usage(() => startPeer({ host: "0.0.0.0", port: 0, dir: join(dir, "peer") }))).toContain("pass --advertise");
      expect(existsSync(join(dir, "peer"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the address a role reports", () => {
  test("the advertised one, its port the bound one when left out; else host:port as before", () => {
    expect(advertisedAddressFor("peer", "0.0.0.0", { host: "10.0.0.4", port: 7210 })(40123)).toBe("10.0.0.4:7210");
    expect(advertisedAddressFor("peer", "0.0.0.0", { host: "10.0.0.4" })(40123)).toBe("10.0.0.4:40123");
    expect(advertisedAddressFor("peer", "127.0.0.1", undefined)(40123)).toBe("127.0.0.1:40123");
    expect(advertisedAddressFor("peer", "::", { host: "fd00::4" })(7210)).toBe("[fd00::4]:7210");
    expect(joinHostPort("::1", 7200)).toBe("[::1]:7200");
  });
  test("the ready line names the advertised address first (what `up` and the tests read), and the bound one when it differs", () => {
    const role = { address: "10.0.0.4:7210", port: 7210, metricsAddress: "0.0.0.0:8210" };
    const line = readyLine("peer peer-4", role, "0.0.0.0");
    expect(line).toBe("mictlanx peer peer-4 listening on 10.0.0.4:7210 (bound to 0.0.0.0:7210) (metrics on http://0.0.0.0:8210/metrics)");
    // The same patterns src/local/process.ts reads it with.
    expect(/listening on (\S+)/.exec(line)?.[1]).toBe("10.0.0.4:7210");
    expect(/metrics on (http:\/\/\S+?)\)?$/m.exec(line)?.[1]).toBe("http://0.0.0.0:8210/metrics");
    expect(readyLine("router", { address: "127.0.0.1:7201", port: 7201 }, "127.0.0.1")).toBe("mictlanx router listening on 127.0.0.1:7201");
  });
});

test("--advertise is in the help of spm, peer and router", () => {
  const program = buildProgram();
  for (const name of ["spm", "peer", "router"]) {
    const command = program.commands.find((candidate) => candidate.name() === name);
    expect(command?.helpInformation()).toContain("--advertise <host:port>");
  }
});
