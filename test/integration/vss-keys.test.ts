// Access keys and the audit log through the real program: `key create/ls/revoke` with their
// JSON shapes and exit codes, the first admin key written once (mode 0600) or imported from a
// file written beforehand, and `audit` showing the key ops, a drain and the deletes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { newAccessKeyId, newSecretKey } from "../../src/lib/access-keys.ts";
import { cli, clientFor, kill9, programCommand, startRole, startTestVss, tempDir } from "../support/vss.ts";
import { sharedSecurity, testCredentials, tlsArgs } from "../support/security.ts";

let vss: Awaited<ReturnType<typeof startTestVss>>;
let env: Record<string, string>;
beforeAll(async () => {
  vss = await startTestVss({ label: "keys", peers: 2, routers: 1 });
  env = { MICTLANX_SPM: vss.spm.address, MICTLANX_ROUTERS: vss.routers.map((router) => router.address).join(",") };
});
afterAll(async () => {
  await vss?.cleanup();
});

const json = (text: string): unknown => JSON.parse(text);
const credentialsFile = () => join(vss.dir, "spm", "credentials.json");

async function keyList(spmEnv = env): Promise<Array<{ accessKey: string; grants: unknown; admin: boolean; createdMs: number; revoked: boolean }>> {
  const listed = await cli(["key", "ls", "--json"], { env: spmEnv });
  expect(listed.code).toBe(0);
  return json(listed.stdout) as Awaited<ReturnType<typeof keyList>>;
}

describe("key create, ls, revoke", () => {
  test("create --json prints the key once, in its shape; ls --json lists it without the secret; revoke marks it revoked", async () => {
    const made = await cli(["key", "create", "--bucket", "photos", "--bucket", "logs-*", "--allow", "read,list,write", "--json"], { env });
    expect(made.code).toBe(0);
    const key = json(made.stdout) as { accessKey: string; secretKey: string; grants: unknown; admin: boolean };
    expect(Object.keys(key).sort()).toEqual(["accessKey", "admin", "grants", "secretKey"]);
    expect(key).toEqual({
      accessKey: expect.stringMatching(/^MX[A-Z2-7]{18}$/),
      secretKey: expect.stringMatching(/^[A-Za-z0-9]{40}$/),
      grants: [
        { bucket: "photos", allow: ["read", "list", "write"] },
        { bucket: "logs-*", allow: ["read", "list", "write"] },
      ],
      admin: false,
    });

    const defaults = json((await cli(["key", "create", "--admin", "--json"], { env })).stdout) as { accessKey: string; grants: unknown; admin: boolean };
    expect(defaults.grants).toEqual([{ bucket: "*", allow: ["read", "list"] }]);
    expect(defaults.admin).toBe(true);

    const listed = await cli(["key", "ls", "--json"], { env });
    expect(listed.stdout).not.toContain(key.secretKey);
    const keys = json(listed.stdout) as Array<Record<string, unknown>>;
    for (const entry of keys) expect(Object.keys(entry).sort()).toEqual(["accessKey", "admin", "createdMs", "grants", "revoked"]);
    expect(keys.find((entry) => entry.accessKey === key.accessKey)).toEqual({
      accessKey: key.accessKey,
      grants: [
        { bucket: "photos", allow: ["read", "list", "write"] },
        { bucket: "logs-*", allow: ["read", "list", "write"] },
      ],
      admin: false,
      createdMs: expect.any(Number),
      revoked: false,
    });

    const revoked = await cli(["key", "revoke", key.accessKey], { env });
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain(`access key ${key.accessKey} is revoked`);
    expect((await cli(["key", "revoke", key.accessKey, "--json"], { env })).stdout.trim()).toBe(JSON.stringify({ accessKey: key.accessKey, revoked: true })); // again: still ok
    const after = await keyList();
    expect(after.find((entry) => entry.accessKey === key.accessKey)?.revoked).toBe(true);
    expect(after.find((entry) => entry.accessKey === defaults.accessKey)?.revoked).toBe(false);
  });

  test("the human output: the secret once with its warning, a table for ls", async () => {
    const made = await cli(["key", "create", "--bucket", "scratch"], { env });
    expect(made.code).toBe(0);
    const lines = made.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^access key {2}MX[A-Z2-7]{18}$/);
    expect(lines[1]).toMatch(/^secret key {2}[A-Za-z0-9]{40}$/);
    expect(lines[2]).toContain("not shown again");
    const table = await cli(["key", "ls"], { env });
    expect(table.stdout.split("\n")[0]).toMatch(/^ACCESS KEY\s+STATE\s+ADMIN\s+CREATED\s+GRANTS$/);
    expect(table.stdout).toContain(`${lines[0]!.slice(12)}`);
    expect(table.stdout).toContain("scratch: read,list");
  });

  test("exit codes: an unknown key 4, what is not a key id, a bad pattern or a bad action 2", async () => {
    const unknown = await cli(["key", "revoke", newAccessKeyId()], { env });
    expect(unknown.code).toBe(4);
    expect(unknown.stderr).toContain("no access key");
    expect((await cli(["key", "revoke", "AKIAIOSFODNN7EXAMPLE"], { env })).code).toBe(2);
    const pattern = await cli(["key", "create", "--bucket", "a*b"], { env });
    expect(pattern.code).toBe(2);
    expect(pattern.stderr).toContain("a * may only end a bucket pattern");
    const action = await cli(["key", "create", "--allow", "read,admin"], { env });
    expect(action.code).toBe(2);
    expect(action.stderr).toContain('"admin" is not an action');
  });
});

describe("the first admin key", () => {
  test("a bare SPM writes it at the first start (mode 0600, with its CA), and a restart neither rewrites it nor makes another key", async () => {
    const dir = tempDir("keys-bare");
    const file = join(dir, "spm", "credentials.json");
    const start = async () => startRole("spm", ["spm", "--port", "0", "--data", join(dir, "spm"), "--metrics-port", "off", ...(await tlsArgs("spm", "spm"))], join(dir, "spm.log"), programCommand());
    let spm = await start();
    try {
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const before = readFileSync(file, "utf8");
      const credentials = json(before) as { accessKey: string; secretKey: string; ca: string | null };
      expect(Object.keys(credentials).sort()).toEqual(["accessKey", "ca", "secretKey"]);
      expect(credentials.ca).toBe(join(sharedSecurity.certsDir, "ca.crt"));
      expect(credentials.secretKey).toMatch(/^[A-Za-z0-9]{40}$/);
      const bareEnv = { MICTLANX_SPM: spm.address, MICTLANX_CREDENTIALS: file };
      const keys = await keyList(bareEnv);
      expect(keys).toEqual([{ accessKey: credentials.accessKey, grants: [{ bucket: "*", allow: ["read", "list", "write", "delete"] }], admin: true, createdMs: expect.any(Number), revoked: false }]);
      const mtimeBefore = statSync(file).mtimeMs;
      kill9(spm);
      await spm.exited;
      spm = await start();
      expect(readFileSync(file, "utf8")).toBe(before);
      expect(statSync(file).mtimeMs).toBe(mtimeBefore);
      expect(await keyList({ ...bareEnv, MICTLANX_SPM: spm.address })).toEqual(keys);
    } finally {
      kill9(spm);
      await spm.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the test VSS took the admin key written before its SPM's first start: the one every CLI here finds", async () => {
    const admin = (await keyList()).find((entry) => entry.accessKey === testCredentials.accessKey);
    expect(admin).toMatchObject({ admin: true, revoked: false, grants: [{ bucket: "*", allow: ["read", "list", "write", "delete"] }] });
    expect(existsSync(credentialsFile())).toBe(false); // imported from the given file: no second one
  });

  test("is imported from a credentials file written before the SPM's first start, which stays as it was", async () => {
    const dir = tempDir("keys-import");
    try {
      const file = join(dir, "given.json");
      const given = { accessKey: newAccessKeyId(), secretKey: newSecretKey() };
      writeFileSync(file, JSON.stringify(given), { mode: 0o600 });
      const spm = await startRole("spm", ["spm", "--port", "0", "--data", join(dir, "spm"), "--metrics-port", "off", "--credentials", file, ...(await tlsArgs("spm", "spm"))], join(dir, "spm.log"), programCommand());
      try {
        const keys = await keyList({ MICTLANX_SPM: spm.address, MICTLANX_CREDENTIALS: file, MICTLANX_CA: join(sharedSecurity.certsDir, "ca.crt") });
        expect(keys).toEqual([{ accessKey: given.accessKey, grants: [{ bucket: "*", allow: ["read", "list", "write", "delete"] }], admin: true, createdMs: expect.any(Number), revoked: false }]);
        expect(readFileSync(file, "utf8")).toBe(JSON.stringify(given));
        expect(readFileSync(join(dir, "spm.log"), "utf8")).toContain(`imported the first admin key ${given.accessKey} from ${file}`);
      } finally {
        kill9(spm);
        await spm.exited;
      }
      // Its catalog now holds a sealed secret: without secrets.key it does not start (nor make a new one).
      rmSync(join(dir, "spm", "secrets.key"));
      const without = await cli(["spm", "--port", "0", "--data", join(dir, "spm"), "--metrics-port", "off", "--credentials", file, ...(await tlsArgs("spm", "spm"))]);
      expect(without.code).toBe(1);
      expect(without.stderr).toContain("holds 1 access keys but their master key");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a credentials file that holds no key is refused at start, saying what to do", async () => {
    const dir = tempDir("keys-bad-file");
    try {
      const file = join(dir, "credentials.json");
      writeFileSync(file, JSON.stringify({ accessKey: "nope" }));
      const run = await cli(["spm", "--port", "0", "--data", dir, "--metrics-port", "off", ...(await tlsArgs("spm", "spm"))]);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`${file} does not hold { "accessKey", "secretKey" }`);
      expect(readFileSync(file, "utf8")).toBe(JSON.stringify({ accessKey: "nope" }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("audit", () => {
  test("shows the key ops, a drain and the deletes, newest first, with who, what, when and how it ended", async () => {
    const made = json((await cli(["key", "create", "--json"], { env })).stdout) as { accessKey: string };
    expect((await cli(["key", "revoke", made.accessKey], { env })).code).toBe(0);
    expect((await cli(["peer", "drain", "peer-1"], { env })).code).toBe(0);
    expect((await cli(["peer", "undrain", "peer-1"], { env })).code).toBe(0);
    const client = clientFor(vss);
    try {
      for (const key of ["a", "b", "c"]) await client.put("audited", key, new TextEncoder().encode(`ball ${key}`));
    } finally {
      client.close();
    }
    expect((await cli(["del", "audited/a"], { env })).code).toBe(0);
    expect((await cli(["del", "audited/missing"], { env })).code).toBe(4);
    expect((await cli(["rb", "audited", "--force"], { env })).code).toBe(0);

    const startedMs = Date.now() - 120_000;
    const shown = await cli(["audit", "--json", "--limit", "1000"], { env });
    expect(shown.code).toBe(0);
    const records = json(shown.stdout) as Array<{ seq: number; atMs: number; accessKey: string | null; remote: string; action: string; target: string; outcome: string }>;
    for (const record of records) expect(Object.keys(record).sort()).toEqual(["accessKey", "action", "atMs", "outcome", "remote", "seq", "target"]);
    expect(records.map((record) => record.seq)).toEqual([...records.map((record) => record.seq)].sort((a, b) => b - a));
    const newest = records.slice(0, 8).reverse().map((record) => [record.action, record.target, record.outcome]);
    expect(newest).toEqual([
      ["key.create", made.accessKey, "ok"],
      ["key.revoke", made.accessKey, "ok"],
      ["peer.drain", "peer-1", "ok"],
      ["peer.undrain", "peer-1", "ok"],
      ["ball.delete", "audited/a", "ok"],
      ["ball.delete", "audited/missing", "not_found"],
      ["ball.deletePrefix", "audited/*", "ok"],
      ["bucket.delete", "audited", "ok"],
    ]);
    for (const record of records.slice(0, 8)) {
      expect(record.remote).toBe("127.0.0.1");
      expect(record.accessKey).toBe(testCredentials.accessKey); // the key the CLI proved (for deletes: the one the router names)
      expect(record.atMs).toBeGreaterThan(startedMs);
    }
    expect(records.some((record) => record.action === "key.create" && record.remote === "local")).toBe(true); // the first admin key

    const two = json((await cli(["audit", "--json", "--limit", "2"], { env })).stdout) as typeof records;
    expect(two).toEqual(records.slice(0, 2));
    const table = await cli(["audit", "--limit", "3"], { env });
    expect(table.stdout.split("\n")[0]).toMatch(/^TIME\s+ACCESS KEY\s+FROM\s+ACTION\s+OUTCOME\s+TARGET$/);
    expect(table.stdout).toContain("bucket.delete");
    expect((await cli(["audit", "--limit", "0"], { env })).code).toBe(2);
  });
});
