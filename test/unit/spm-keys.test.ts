// The SPM's key and audit ops over the wire, in process: key.lookup (what routers will ask),
// the first admin key's file with a CA path, and the `actor` a router names on a delete.
import { afterEach, expect, test } from "bun:test";
import { readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { startSpm, type RunningSpm } from "../../src/roles/spm/spm.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { spmOps } from "../../src/protocol/spm.ts";
import { newAccessKeyId } from "../../src/lib/access-keys.ts";
import { rejection } from "../support/errors.ts";
import { tempDir } from "../support/vss.ts";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function spmFor(label: string, options: { caPath?: string } = {}): Promise<{ spm: RunningSpm; call: ServiceClient<typeof spmOps>; dir: string; lines: string[] }> {
  const dir = tempDir(label);
  const lines: string[] = [];
  const spm = await startSpm({ host: "127.0.0.1", port: 0, dir, log: (line) => lines.push(line), ...options });
  const pool = new RpcPool({ role: "spm", expectRole: "spm" });
  cleanups.push(async () => {
    pool.close();
    await spm.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return { spm, call: new ServiceClient(spmOps, pool, parseAddress(spm.address)), dir, lines };
}

test("key.lookup gives a router the secret, grants, admin and revoked; an unknown id is found: false", async () => {
  const { call } = await spmFor("spm-keys-lookup");
  const made = await call.call("key.create", { grants: [{ bucket: "photos", allow: ["write", "read", "write"] }], admin: false });
  expect(made.grants).toEqual([{ bucket: "photos", allow: ["read", "write"] }]);
  expect(await call.call("key.lookup", { accessKey: made.accessKey })).toEqual({
    found: true,
    accessKey: made.accessKey,
    secretKey: made.secretKey,
    grants: [{ bucket: "photos", allow: ["read", "write"] }],
    admin: false,
    revoked: false,
  });
  await call.call("key.revoke", { accessKey: made.accessKey });
  expect(await call.call("key.lookup", { accessKey: made.accessKey })).toMatchObject({ found: true, revoked: true });
  expect(await call.call("key.lookup", { accessKey: newAccessKeyId() })).toEqual({ found: false });
  expect((await rejection(call.call("key.revoke", { accessKey: newAccessKeyId() }))).code).toBe("not_found");
  expect((await rejection(call.call("key.create", { grants: [], admin: false }))).code).toBe("bad_request");
  const { keys } = await call.call("key.list", { limit: 1 });
  expect(keys).toHaveLength(1);
});

test("the first admin key's file names the CA path it is given, and says where it went", async () => {
  const { dir, lines, call } = await spmFor("spm-keys-ca", { caPath: "/etc/mictlanx/ca.crt" });
  const file = join(dir, "credentials.json");
  const written = JSON.parse(readFileSync(file, "utf8")) as { accessKey: string; secretKey: string; ca: string };
  expect(written.ca).toBe("/etc/mictlanx/ca.crt");
  expect(statSync(file).mode & 0o777).toBe(0o600);
  expect(lines.filter((line) => line.includes("first admin key"))).toEqual([`made the first admin key ${written.accessKey}; its secret is in ${file} (mode 0600, shown nowhere else)`]);
  expect(await call.call("key.lookup", { accessKey: written.accessKey })).toMatchObject({ found: true, secretKey: written.secretKey, admin: true });
});

test("a delete names the client a router speaks for; without an actor the caller itself is recorded", async () => {
  const { call } = await spmFor("spm-keys-actor");
  const client = newAccessKeyId();
  await call.call("bucket.create", { bucket: "empty-a" });
  await call.call("bucket.create", { bucket: "empty-b" });
  await call.call("bucket.delete", { bucket: "empty-a", actor: { accessKey: client, remote: "192.168.7.7" } });
  await call.call("bucket.delete", { bucket: "empty-b" });
  expect((await rejection(call.call("ball.delete", { bucket: "none", key: "k", actor: { remote: "192.168.7.8" } }))).code).toBe("not_found");
  expect((await rejection(call.call("ball.deletePrefix", { bucket: "none", actor: { accessKey: client, remote: "192.168.7.9" } }))).code).toBe("not_found");
  const { records } = await call.call("audit.list", { limit: 4 });
  expect(records.map(({ accessKey, remote, action, target, outcome }) => ({ accessKey, remote, action, target, outcome }))).toEqual([
    { accessKey: client, remote: "192.168.7.9", action: "ball.deletePrefix", target: "none/*", outcome: "not_found" },
    { accessKey: null, remote: "192.168.7.8", action: "ball.delete", target: "none/k", outcome: "not_found" },
    { accessKey: null, remote: "127.0.0.1", action: "bucket.delete", target: "empty-b", outcome: "ok" },
    { accessKey: client, remote: "192.168.7.7", action: "bucket.delete", target: "empty-a", outcome: "ok" },
  ]);
});
