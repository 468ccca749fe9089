// statusOfSpms against real RpcServers on loopback standing in for SPMs: each one's part, the
// status taken from the leader of the newest term (else the first answer), one that cannot be
// reached shown as down, none answering an error naming each, a refusal said as itself.
import { afterEach, expect, test } from "bun:test";
import { RpcServer } from "../../src/net/server.ts";
import { RpcPool } from "../../src/net/pool.ts";
import { statusOfSpms } from "../../src/net/spm-status.ts";
import { defineOps } from "../../src/protocol/envelope.ts";
import { spmOps, type SpmLeadership, type VssStatus } from "../../src/protocol/spm.ts";
import { ForbiddenError } from "../../src/lib/errors.ts";
import { freePort } from "../support/etcd.ts";
import { rejection } from "../support/errors.ts";

const ops = defineOps({ "vss.status": spmOps["vss.status"] });
const servers: RpcServer<typeof ops>[] = [];
let pool: RpcPool;
afterEach(() => {
  pool?.close();
  for (const server of servers.splice(0)) server.stop();
});

function statusOf(spm: string, leadership: SpmLeadership | undefined): VssStatus {
  return {
    spm,
    ...(leadership ? { leadership } : {}),
    uptimeMs: 1000,
    vssId: "0190a5c4-0000-7000-8000-000000000000",
    catalog: { writable: true },
    peers: [],
    routers: [],
    balls: 0,
    buckets: 0,
    bytes: 0,
    chunks: 0,
    underReplicated: 0,
    garbage: 0,
    pendingUploads: 0,
    pendingUploadBytes: 0,
    healing: { active: false, queued: 0, inFlight: 0, healedChunks: 0, healedBytes: 0, trimmedReplicas: 0, movedChunks: 0, repairedCorrupt: 0, failures: 0, bytesPerSec: 0 },
    drains: [],
    reconcile: { checking: 0, passes: 0, missingReplicas: 0, orphansCollected: 0, adoptedReplicas: 0, repairedReplicas: 0, lostChunks: 0, blocked: [] },
    events: [],
    insecure: true,
    certificates: [],
    certificateWarnings: [],
  };
}

/** An SPM stand-in that says it plays `leadership` (or refuses every caller). */
function fakeSpm(leadership: SpmLeadership | undefined, refuse = false): string {
  const server: RpcServer<typeof ops> = new RpcServer({
    host: "127.0.0.1",
    port: 0,
    ops,
    handlers: {
      "vss.status": () => {
        if (refuse) throw new ForbiddenError("that key is revoked");
        return statusOf(`127.0.0.1:${server.port}`, leadership);
      },
    },
  });
  server.listen();
  servers.push(server);
  return `127.0.0.1:${server.port}`;
}

function newPool(): RpcPool {
  pool = new RpcPool({ role: "spm", connectAttempts: 1 });
  return pool;
}

test("each SPM's part; the rest from the leader; one that cannot be reached is down", async () => {
  const standby = fakeSpm({ role: "standby", term: 5, leader: "x:1" });
  const leader = fakeSpm({ role: "leader", term: 5 });
  const down = `127.0.0.1:${await freePort()}`;
  const { status, spms } = await statusOfSpms(newPool(), [standby, leader, down]);
  expect(status.spm).toBe(leader);
  expect(spms.map(({ address, role, term }) => ({ address, role, term }))).toEqual([
    { address: standby, role: "standby", term: 5 },
    { address: leader, role: "leader", term: 5 },
    { address: down, role: "down", term: undefined },
  ]);
  expect(spms[2]?.error).toContain("refused the connection");
});

test("two claiming to lead across a failover: the newer term's status; no leader: the first answer; no leadership said: a leader alone", async () => {
  const stale = fakeSpm({ role: "leader", term: 4 });
  const fresh = fakeSpm({ role: "leader", term: 9 });
  expect((await statusOfSpms(newPool(), [stale, fresh])).status.spm).toBe(fresh);
  pool.close();
  const a = fakeSpm({ role: "standby", term: 9 });
  const b = fakeSpm({ role: "standby", term: 9 });
  expect((await statusOfSpms(newPool(), [a, b])).status.spm).toBe(a);
  pool.close();
  const old = fakeSpm(undefined);
  expect((await statusOfSpms(newPool(), [old])).spms).toEqual([{ address: old, role: "leader" }]);
});

test("none answering: an error naming each address; a refusal is said as itself", async () => {
  const [one, two] = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
  const none = await rejection(statusOfSpms(newPool(), [one, two]));
  expect(none.code).toBe("unavailable");
  expect(none.message).toContain(`no SPM answered (tried ${one}, ${two})`);
  pool.close();
  const refusing = fakeSpm({ role: "leader" }, true);
  const refused = await rejection(statusOfSpms(newPool(), [one, refusing]));
  expect(refused.code).toBe("forbidden");
  expect(refused.message).toContain("that key is revoked");
});
