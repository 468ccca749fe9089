// SpmSet against real RpcServers on loopback: which SPM a call goes to, failover on a refused or
// silent one (each tried once), remote errors passed through, and who leads as heartbeat
// replies tell it.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { z } from "zod";
import { RpcServer } from "../../src/net/server.ts";
import { RpcPool } from "../../src/net/pool.ts";
import { SpmSet, unreachable } from "../../src/net/spm-set.ts";
import { defineOps } from "../../src/protocol/envelope.ts";
import { ConflictError, MictlanxError, UnavailableError } from "../../src/lib/errors.ts";
import { limits } from "../../src/lib/limits.ts";
import { parseSpmList } from "../../src/lib/defaults.ts";
import { freePort } from "../support/etcd.ts";
import { rejection } from "../support/errors.ts";

const ops = defineOps({
  who: { args: z.object({}), result: z.object({ name: z.string() }) },
  refuse: { args: z.object({}), result: z.object({}) },
  hang: { args: z.object({}), result: z.object({ name: z.string() }) },
});

interface FakeSpm {
  name: string;
  address: string;
  calls: number;
  server: RpcServer<typeof ops>;
}

const servers: FakeSpm[] = [];

function fakeSpm(name: string, options: { hang?: boolean; noLeader?: boolean; standbyOf?: () => string } = {}): FakeSpm {
  const spm: FakeSpm = { name, address: "", calls: 0, server: undefined as unknown as RpcServer<typeof ops> };
  spm.server = new RpcServer({
    host: "127.0.0.1",
    port: 0,
    ops,
    handlers: {
      who: () => {
        spm.calls += 1;
        if (options.noLeader) throw new UnavailableError(`SPM ${spm.address} is a standby and takes no writes: no leader SPM is elected yet; retry shortly`);
        // The words of src/roles/spm/leadership.ts's refusal.
        if (options.standbyOf) throw new UnavailableError(`SPM ${spm.address} is a standby and takes no writes: the leader is ${options.standbyOf()} (term 12)`);
        return { name };
      },
      refuse: () => {
        spm.calls += 1;
        throw new ConflictError(`${name} says no`);
      },
      hang: async () => {
        spm.calls += 1;
        if (options.hang) await Bun.sleep(2_000);
        return { name };
      },
    },
  });
  spm.server.listen();
  spm.address = `127.0.0.1:${spm.server.port}`;
  servers.push(spm);
  return spm;
}

/** An address nothing listens on: connecting is refused. */
let closed: string;
let pool: RpcPool;

beforeAll(async () => {
  closed = `127.0.0.1:${await freePort()}`;
});

afterEach(() => {
  pool?.close();
  for (const spm of servers.splice(0)) spm.server.stop();
});

function setOf(addresses: string[], onLeaderChanged?: (leader: string | undefined) => void): SpmSet<typeof ops> {
  pool = new RpcPool({ role: "spm", connectAttempts: 1, connectTimeoutMs: 500 });
  return new SpmSet(pool, addresses, { ops, ...(onLeaderChanged ? { onLeaderChanged } : {}) });
}

describe("calls", () => {
  test("go to the first SPM while it answers", async () => {
    const [a, b] = [fakeSpm("a"), fakeSpm("b")];
    const set = setOf([a.address, b.address]);
    for (let i = 0; i < 3; i += 1) expect((await set.call("who", {})).name).toBe("a");
    expect([a.calls, b.calls]).toEqual([3, 0]);
  });

  test("a refused SPM is passed over for the next, which is asked first from then on", async () => {
    const b = fakeSpm("b");
    const set = setOf([closed, b.address]);
    expect((await set.call("who", {})).name).toBe("b");
    expect(set.preferred).toBe(b.address);
    expect((await set.call("who", {})).name).toBe("b");
    expect(b.calls).toBe(2);
  });

  test("an SPM's own error is its answer: passed on, no other SPM asked", async () => {
    const [a, b] = [fakeSpm("a"), fakeSpm("b")];
    const set = setOf([a.address, b.address]);
    const error = await rejection(set.call("refuse", {}));
    expect(error).toBeInstanceOf(MictlanxError);
    expect((error as MictlanxError).code).toBe("conflict");
    expect((error as MictlanxError).message).toContain("a says no");
    expect([a.calls, b.calls]).toEqual([1, 0]);
  });

  test("a standby's 'no leader yet' is an answer too (callers retry it), not a reason to walk the list", async () => {
    const [a, b] = [fakeSpm("a", { noLeader: true }), fakeSpm("b")];
    const set = setOf([a.address, b.address]);
    const error = (await rejection(set.call("who", {}))) as MictlanxError;
    expect([error.code, error.remote]).toEqual(["unavailable", true]);
    expect(b.calls).toBe(0);
  });

  test("an SPM that does not answer in time is passed over", async () => {
    const [a, b] = [fakeSpm("a", { hang: true }), fakeSpm("b")];
    const set = setOf([a.address, b.address]);
    expect((await set.call("hang", {}, { timeoutMs: 200 })).name).toBe("b");
    expect([a.calls, b.calls]).toEqual([1, 1]);
  });

  test("none answering: each tried once, the error names every address and keeps the code", async () => {
    const other = `127.0.0.1:${await freePort()}`;
    const set = setOf([closed, other]);
    const error = (await rejection(set.call("who", {}))) as MictlanxError;
    expect(error.code).toBe("unavailable");
    expect(error.remote).toBe(false);
    expect(error.message).toContain(`tried ${closed}, ${other}`);
    expect(unreachable(error)).toBe(true); // the router's SpmAway takes it as "no SPM could be asked"
  });

  test("one SPM that cannot be reached fails with its own error, as before there were several", async () => {
    const set = setOf([closed]);
    const error = (await rejection(set.call("who", {}))) as MictlanxError;
    expect(error.code).toBe("unavailable");
    expect(error.message).toContain(`${closed} refused the connection`);
    expect(error.message).not.toContain("tried");
  });
});

describe("a standby's refusal naming the leader", () => {
  test("the call goes on to the leader at once, which is asked first from then on", async () => {
    let leaderAddress = "";
    const standby = fakeSpm("standby", { standbyOf: () => leaderAddress });
    const [other, leader] = [fakeSpm("other"), fakeSpm("leader")];
    leaderAddress = leader.address;
    const changes: (string | undefined)[] = [];
    const set = setOf([standby.address, other.address, leader.address], (named) => changes.push(named));
    expect((await set.call("who", {})).name).toBe("leader");
    expect([standby.calls, other.calls, leader.calls]).toEqual([1, 0, 1]);
    expect(set.leader).toBe(leader.address);
    expect(changes).toEqual([leader.address]);
    expect((await set.call("who", {})).name).toBe("leader");
    expect(standby.calls).toBe(1);
  });

  test("a leader named that cannot be reached: the rest are asked, and with none answering the standby's word stands", async () => {
    const standby = fakeSpm("standby", { standbyOf: () => closed });
    const set = setOf([standby.address, closed]);
    const error = (await rejection(set.call("who", {}))) as MictlanxError;
    expect([error.code, error.remote]).toEqual(["unavailable", true]);
    expect(error.message).toContain(`the leader is ${closed} (term 12)`);
    expect(set.leader).toBeUndefined(); // found unreachable: not preferred
  });

  test("a leader named outside the list is not followed: the refusal is the answer", async () => {
    const standby = fakeSpm("standby", { standbyOf: () => "10.9.9.9:7200" });
    const other = fakeSpm("other");
    const set = setOf([standby.address, other.address]);
    const error = (await rejection(set.call("who", {}))) as MictlanxError;
    expect(error.message).toContain("the leader is 10.9.9.9:7200");
    expect(other.calls).toBe(0);
  });
});

describe("the addresses", () => {
  test("a bad one is a usage error; repeats are one SPM", () => {
    expect(() => setOf(["127.0.0.1:7200", "nonsense"])).toThrow(/"nonsense" is not an address/);
    const set = setOf(["127.0.0.1:7200", " 127.0.0.1:7200", "127.0.0.1:7201"]);
    expect(set.addresses).toEqual(["127.0.0.1:7200", "127.0.0.1:7201"]);
  });

  test(`a list holds at most spmAddressesMax (${limits.spmAddressesMax}) distinct SPMs`, () => {
    const list = (count: number) => Array.from({ length: count }, (_, i) => `127.0.0.1:${7300 + i}`).join(",");
    expect(parseSpmList(list(limits.spmAddressesMax))).toHaveLength(limits.spmAddressesMax);
    expect(parseSpmList(`${list(limits.spmAddressesMax)},127.0.0.1:7300`)).toHaveLength(limits.spmAddressesMax);
    expect(() => parseSpmList(list(limits.spmAddressesMax + 1))).toThrow(`at most ${limits.spmAddressesMax}`);
    expect(() => parseSpmList(" , ")).toThrow("at least one");
  });
});

describe("who leads", () => {
  test("an SPM saying it leads is asked first", async () => {
    const [a, b, c] = [fakeSpm("a"), fakeSpm("b"), fakeSpm("c")];
    const changes: (string | undefined)[] = [];
    const set = setOf([a.address, b.address, c.address], (leader) => changes.push(leader));
    set.noteLeadership(c.address, { role: "leader", term: 7 });
    expect((await set.call("who", {})).name).toBe("c");
    set.noteLeadership(c.address, { role: "leader", term: 7 }); // the same: no change told
    expect(changes).toEqual([c.address]);
  });

  test("a standby naming the leader is believed, unless its term is older than the one known", async () => {
    const [a, b, c] = [fakeSpm("a"), fakeSpm("b"), fakeSpm("c")];
    const set = setOf([a.address, b.address, c.address]);
    set.noteLeadership(a.address, { role: "standby", term: 9, leader: b.address });
    expect(set.leader).toBe(b.address);
    set.noteLeadership(c.address, { role: "standby", term: 8, leader: c.address }); // names itself: nonsense, ignored
    set.noteLeadership(a.address, { role: "standby", term: 8, leader: c.address }); // older news
    expect(set.leader).toBe(b.address);
    set.noteLeadership(a.address, { role: "standby", leader: "elsewhere:1" }); // not in the list
    set.noteLeadership(a.address, { role: "standby", leader: "not an address" });
    expect(set.leader).toBe(b.address);
    expect((await set.call("who", {})).name).toBe("b");
  });

  test("a leader that steps down is forgotten; calls go to the last that answered", async () => {
    const [a, b] = [fakeSpm("a"), fakeSpm("b")];
    const set = setOf([a.address, b.address]);
    set.noteLeadership(b.address, { role: "leader", term: 3 });
    expect((await set.call("who", {})).name).toBe("b");
    set.noteLeadership(b.address, { role: "standby" }); // an election is under way
    expect(set.leader).toBeUndefined();
    expect(set.preferred).toBe(b.address);
  });

  test("a leader found unreachable is not taken back from a standby's stale word, only from a newer term", async () => {
    const b = fakeSpm("b");
    const changes: (string | undefined)[] = [];
    const set = setOf([closed, b.address], (leader) => changes.push(leader));
    set.noteLeadership(b.address, { role: "standby", term: 4, leader: closed });
    expect((await set.call("who", {})).name).toBe("b");
    expect(set.leader).toBeUndefined();
    set.noteLeadership(b.address, { role: "standby", term: 4, leader: closed }); // its lease has not run out yet
    expect(set.leader).toBeUndefined();
    set.noteLeadership(b.address, { role: "leader", term: 5 });
    expect(set.leader).toBe(b.address);
    set.noteLeadership(b.address, { role: "standby", term: 6, leader: closed }); // b stepped down, and the other won a later election
    expect(set.leader).toBe(closed);
    expect(changes).toEqual([closed, undefined, b.address, undefined, closed]);
  });
});

afterAll(() => pool?.close());
