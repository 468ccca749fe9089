// LeaderElection (src/coordination/election.ts) against a real etcd: one leader at a time, a
// larger term for every later leader, and a leader that learns it lost its lease before etcd
// could give the key to another (a frozen leader in a child process; etcd killed).
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { EtcdClient } from "../../src/coordination/etcd.ts";
import { LeaderElection, leaderKey, safetyMarginMs, type DemotionReason } from "../../src/coordination/election.ts";
import { etcdUnavailable, startTestEtcd, type TestEtcd } from "../support/etcd.ts";
import { eventually } from "../support/vss.ts";

if (etcdUnavailable !== undefined) console.warn(`[etcd-election.test.ts] SKIPPED on this machine: ${etcdUnavailable}`);

/** Short leases so each case takes seconds; 2 s leaves room on a busy 2-core machine (1 s is etcd's floor here). */
const ttlMs = 2_000;
const candidateScript = resolve(import.meta.dir, "../support/etcd-candidate.ts");

interface Recorded {
  id: string;
  election: LeaderElection;
  elected: { term: number; atMs: number }[];
  demoted: { reason: DemotionReason; detail: string; atMs: number }[];
}

let keys = 0;
const freshKey = () => leaderKey(`vss-${process.pid}-${++keys}`);

function candidate(etcd: TestEtcd, key: string, id: string): Recorded {
  const recorded: Recorded = { id, election: undefined as unknown as LeaderElection, elected: [], demoted: [] };
  recorded.election = new LeaderElection({
    etcd: new EtcdClient(etcd.url),
    key,
    candidate: { id, address: `${id}.test:7000` },
    leaseTtlMs: ttlMs,
    onElected: (term) => recorded.elected.push({ term, atMs: performance.now() }),
    onDemoted: (reason, detail) => recorded.demoted.push({ reason, detail, atMs: performance.now() }),
    log: (line) => console.log(line),
  });
  return recorded;
}

/** Samples who counts itself leader every few ms; any moment with two is kept. */
function watchOverlap(candidates: Recorded[]) {
  const overlaps: string[] = [];
  const timer = setInterval(() => {
    const leaders = candidates.filter((one) => one.election.isLeader()).map((one) => one.id);
    if (leaders.length > 1) overlaps.push(leaders.join("+"));
  }, 5);
  return { overlaps, stop: () => clearInterval(timer) };
}

const leaderAmong = (candidates: Recorded[]) => candidates.filter((one) => one.election.isLeader());

describe.skipIf(etcdUnavailable !== undefined)("leader election on a real etcd", () => {
  let etcd: TestEtcd;
  const started: Recorded[] = [];
  const children: Bun.Subprocess[] = [];
  const start = (key: string, id: string) => {
    const one = candidate(etcd, key, id);
    started.push(one);
    one.election.start();
    return one;
  };

  beforeAll(async () => {
    etcd = await startTestEtcd("election");
  });
  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, "SIGKILL");
    await Promise.all(started.splice(0).map((one) => one.election.resign()));
  });
  afterAll(async () => {
    await etcd?.cleanup();
  });

  test("one candidate is elected, keeps its lease over several TTLs, and its resign deletes the key", async () => {
    const key = freshKey();
    const solo = start(key, "solo");
    await eventually("solo elected", 10_000, () => solo.election.isLeader());
    const term = solo.election.term();
    expect(term).toBeGreaterThan(0);
    expect(solo.elected.map((one) => one.term)).toEqual([term ?? -1]);
    expect(solo.election.currentLeader()).toEqual({ id: "solo", address: "solo.test:7000", term: term ?? -1 });
    expect(await solo.election.readLeader()).toEqual({ id: "solo", address: "solo.test:7000", term: term ?? -1 });
    await Bun.sleep(3 * ttlMs); // the lease lives only by its keepalives
    expect(solo.election.isLeader()).toBe(true);
    expect(solo.demoted).toEqual([]);
    await solo.election.resign();
    expect(solo.demoted.map((one) => one.reason)).toEqual(["resigned"]);
    expect(solo.election.isLeader()).toBe(false);
    expect((await new EtcdClient(etcd.url).range(key)).kvs).toEqual([]);
  });

  test("two candidates: exactly one leads, the other sees it as leader", async () => {
    const key = freshKey();
    const pair = [start(key, "a"), start(key, "b")];
    const overlap = watchOverlap(pair);
    try {
      await eventually("one leader", 10_000, () => leaderAmong(pair).length === 1);
      const [leader] = leaderAmong(pair);
      const follower = pair.find((one) => one !== leader);
      if (leader === undefined || follower === undefined) throw new Error("no leader and follower");
      const term = leader.election.term() ?? -1;
      await eventually("the follower sees the leader", 10_000, () => follower.election.currentLeader()?.id === leader.id || `it sees ${JSON.stringify(follower.election.currentLeader())}`);
      expect(follower.election.currentLeader()).toEqual({ id: leader.id, address: `${leader.id}.test:7000`, term });
      await Bun.sleep(2 * ttlMs); // and it stays that way while the leader lives
      expect(leaderAmong(pair)).toEqual([leader]);
      expect(follower.elected).toEqual([]);
      expect(leader.elected).toHaveLength(1);
    } finally {
      overlap.stop();
    }
    expect(overlap.overlaps).toEqual([]);
  });

  test("the leader resigns: the other is elected at once, with a larger term", async () => {
    const key = freshKey();
    const first = start(key, "first");
    await eventually("first elected", 10_000, () => first.election.isLeader());
    const firstTerm = first.election.term() ?? -1;
    const second = start(key, "second");
    await eventually("second follows first", 10_000, () => second.election.currentLeader()?.id === "first");
    const overlap = watchOverlap([first, second]);
    const resignedMs = performance.now();
    await first.election.resign();
    await eventually("second elected", 10_000, () => second.election.isLeader());
    overlap.stop();
    const takeoverMs = (second.elected[0]?.atMs ?? Infinity) - resignedMs;
    console.log(`[etcd-election] takeover after a resign: ${takeoverMs.toFixed(0)} ms (TTL ${ttlMs} ms)`);
    expect(takeoverMs).toBeLessThan(ttlMs); // the standby's watch saw the key go; it did not wait out a lease
    expect(second.election.term()).toBeGreaterThan(firstTerm);
    expect(first.demoted.map((one) => one.reason)).toEqual(["resigned"]);
    expect(overlap.overlaps).toEqual([]);
  });

  test("the leader key deleted under a live lease: the leader steps down within a keepalive period, and a new term follows", async () => {
    const key = freshKey();
    const holder = start(key, "holder");
    await eventually("holder elected", 10_000, () => holder.election.isLeader());
    const firstTerm = holder.election.term() ?? -1;
    const deletedMs = performance.now();
    expect((await new EtcdClient(etcd.url).deleteKey(key)).deleted).toBe(1); // an operator's mistake
    await eventually("holder steps down", 10_000, () => holder.demoted.length > 0);
    expect(holder.demoted[0]?.reason).toBe("key_lost");
    expect((holder.demoted[0]?.atMs ?? Infinity) - deletedMs).toBeLessThan(ttlMs / 3 + 500);
    await eventually("a leader again", 10_000, () => holder.election.isLeader());
    expect(holder.election.term()).toBeGreaterThan(firstTerm);
  });

  test("a leader frozen (SIGSTOP) past its TTL is replaced with a larger term, and on waking learns it was demoted", async () => {
    const key = freshKey();
    const child = Bun.spawn([process.execPath, candidateScript, etcd.url, key, "frozen", String(ttlMs)], { stdin: "ignore", stdout: "pipe", stderr: "inherit" });
    children.push(child);
    const lines = childLines(child);
    await eventually("the child elected", 15_000, () => lines.events.some((event) => event.event === "elected"));
    const childTerm = Number(lines.events.find((event) => event.event === "elected")?.term);
    const standby = start(key, "standby");
    await eventually("standby follows the child", 10_000, () => standby.election.currentLeader()?.id === "frozen");
    process.kill(child.pid, "SIGSTOP");
    const frozenMs = performance.now();
    try {
      await eventually("standby elected", 15_000, () => standby.election.isLeader());
      const takeoverMs = (standby.elected[0]?.atMs ?? Infinity) - frozenMs;
      console.log(`[etcd-election] takeover from a frozen leader: ${takeoverMs.toFixed(0)} ms after SIGSTOP (TTL ${ttlMs} ms)`);
      // etcd let the key go only once the lease ran out: no sooner than a TTL after the last
      // keepalive, which came at most a keepalive period (TTL/3) before the freeze.
      expect(takeoverMs).toBeGreaterThan(ttlMs - ttlMs / 3 - 100);
      expect(standby.election.term()).toBeGreaterThan(childTerm);
    } finally {
      process.kill(child.pid, "SIGCONT");
    }
    await eventually("the child says it was demoted", 10_000, () => lines.events.some((event) => event.event === "demoted") || lines.events.map((event) => event.event).join(","));
    const demotion = lines.events.find((event) => event.event === "demoted");
    expect(["deadline", "lease_lost"]).toContain(String(demotion?.reason));
    await eventually("the child follows the standby", 10_000, () => lines.events.some((event) => event.event === "leader" && (event.leader as { id?: string } | null)?.id === "standby"));
    expect(lines.events.filter((event) => event.event === "elected")).toHaveLength(1); // it did not take the key back
    expect(standby.election.isLeader()).toBe(true);
    expect(standby.demoted).toEqual([]);
  });
});

describe.skipIf(etcdUnavailable !== undefined)("leader election when etcd goes away", () => {
  let etcd: TestEtcd;
  const started: Recorded[] = [];
  afterAll(async () => {
    await Promise.all(started.map((one) => one.election.resign()));
    await etcd?.cleanup();
  });

  test("etcd killed: the leader steps down within its TTL; etcd back: a leader again, with a larger term", async () => {
    etcd = await startTestEtcd("election-kill");
    const key = freshKey();
    const pair = [candidate(etcd, key, "x"), candidate(etcd, key, "y")];
    started.push(...pair);
    for (const one of pair) one.election.start();
    const overlap = watchOverlap(pair);
    await eventually("one leader", 10_000, () => leaderAmong(pair).length === 1);
    const [leader] = leaderAmong(pair);
    if (leader === undefined) throw new Error("no leader");
    const firstTerm = leader.election.term() ?? -1;

    const killedMs = performance.now();
    await etcd.kill();
    await eventually("the leader steps down", 2 * ttlMs, () => leader.demoted.length > 0);
    const stepDownMs = (leader.demoted[0]?.atMs ?? Infinity) - killedMs;
    console.log(`[etcd-election] leader stepped down ${stepDownMs.toFixed(0)} ms after etcd was killed (TTL ${ttlMs} ms, margin ${safetyMarginMs(ttlMs)} ms): ${leader.demoted[0]?.detail}`);
    expect(leader.demoted[0]?.reason).toBe("deadline");
    expect(stepDownMs).toBeLessThan(ttlMs - safetyMarginMs(ttlMs) + 150); // its deadline, give or take a late timer
    expect(leaderAmong(pair)).toEqual([]);
    await Bun.sleep(ttlMs); // nobody can be elected while etcd is down
    expect(pair.flatMap((one) => one.elected)).toHaveLength(1);

    const restartedMs = performance.now();
    await etcd.restart();
    await eventually("a leader again", 20_000, () => leaderAmong(pair).length === 1);
    overlap.stop();
    const [again] = leaderAmong(pair);
    console.log(`[etcd-election] ${again?.id} elected ${(performance.now() - restartedMs).toFixed(0)} ms after etcd restarted`);
    expect(again?.election.term()).toBeGreaterThan(firstTerm);
    expect(overlap.overlaps).toEqual([]);
  });
});

/** The child candidate's JSON lines, parsed as they come. */
function childLines(child: Bun.Subprocess<"ignore", "pipe", "inherit">) {
  const events: Record<string, unknown>[] = [];
  void (async () => {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const piece of child.stdout) {
      pending += decoder.decode(piece, { stream: true });
      for (let newline = pending.indexOf("\n"); newline >= 0; newline = pending.indexOf("\n")) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (line.trim().length > 0) events.push(JSON.parse(line) as Record<string, unknown>);
      }
    }
  })();
  return { events };
}
