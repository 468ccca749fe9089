// One leader among several candidates (the SPMs of a VSS), elected with an etcd lease.
//
//   key     /mictlanx/<vssId>/spm/leader = {"id","address"} of the leader, attached to its lease
//   term    the key's create_revision: etcd's store revision when the key was created. Revisions
//           only grow (across restarts and compactions too), and the key is created anew at
//           each election, so a later leader always has a larger term. Lease ids are not ordered
//           (they are made per etcd member), so they cannot be compared to fence anything.
//
// A candidate loops: read the key; if a leader holds it, watch it until it is deleted (bounded
// by a TTL, then read again); when it is gone, grant a lease and create the key in one
// transaction that succeeds only if the key does not exist (compare create_revision = 0). The
// winner renews its lease every TTL/3 and checks the key is still its own; a leader resigns by
// revoking its lease, which deletes the key at once, and a dead one's key goes with its lease.
//
// Why a leader that believes it leads cannot outlive its lease at etcd:
// etcd expires a lease a TTL after it last renewed it (the grant or a keepalive), on etcd's clock.
// The leader reads its monotonic clock at t_sent BEFORE it sends a grant or keepalive; etcd can
// only renew the lease once it has the request, so at etcd the lease lasts at least until
// t_sent + TTL. The leader counts itself leader only while now < t_sent + TTL − margin, where
// t_sent is that of the last renewal etcd confirmed (a reply with a TTL above 0: a renewal whose
// reply never came is not counted, even if etcd applied it, which only makes the leader give up
// early). So it stops before the first moment etcd could delete its key and let another win, as
// long as the two clocks run at about the same rate (the margin, 20 % of the TTL, is many times
// the drift NTP allows: 500 ppm is 2.5 ms over 5 s). The margin is also the time the event loop
// has to run the demotion and stop work: the deadline timer can fire late on a busy loop, so
// `isLeader()` reads the clock itself and never answers a stale "yes". etcd only ever lengthens
// leases (a new etcd leader renews them all, its expiry loop runs late): the safe side.
// What the clock cannot cover is a process paused between asking `isLeader()` and acting (a GC
// pause, SIGSTOP), or a suspended host (its monotonic clock stops while etcd's runs). That is
// what the term is for: every change a leader makes carries its term and is checked in the
// catalog's own transaction against the newest term, so an old leader's late write is refused.
import { z } from "zod";
import { assert } from "../lib/assert.ts";
import { systemClock, type Clock } from "../lib/clock.ts";
import { UsageError, toMictlanxError } from "../lib/errors.ts";
import { coordinationLimits } from "../lib/limits.ts";
import type { EtcdClient, KeyValue, LeaseId } from "./etcd.ts";

/** Where the SPMs of one VSS elect their leader. */
export function leaderKey(vssId: string): string {
  assert(vssId.length > 0 && !vssId.includes("/"), "a VSS id is one path segment");
  return `/mictlanx/${vssId}/spm/leader`;
}

export interface Candidate {
  id: string;
  address: string;
}

export interface Leader extends Candidate {
  /** The leader key's create_revision: larger for every later leader. */
  term: number;
}

/**
 * Why a leader stopped leading:
 *   deadline    no renewal was confirmed in time (etcd unreachable, or this process paused)
 *   lease_lost  etcd says the lease is gone (it expired there)
 *   key_lost    the key was deleted or replaced while the lease lived (an operator?)
 *   resigned    `resign()` was called
 */
export type DemotionReason = "deadline" | "lease_lost" | "key_lost" | "resigned";

export interface LeaderElectionOptions {
  etcd: EtcdClient;
  /** e.g. leaderKey(vssId) */
  key: string;
  candidate: Candidate;
  /** Whole seconds (etcd's lease unit); default leaseTtlMsDefault. */
  leaseTtlMs?: number;
  clock?: Clock;
  /** This candidate became leader with this term (`isLeader()` is already true). */
  onElected?: (term: number) => void;
  /** This candidate is no longer leader (`isLeader()` is already false): stop acting as one. */
  onDemoted?: (reason: DemotionReason, detail: string) => void;
  /** The leader this candidate sees changed (undefined: none known right now). */
  onLeaderChanged?: (leader: Leader | undefined) => void;
  log?: (line: string) => void;
}

const candidateValue = z.object({ id: z.string().min(1), address: z.string() });

/** What a leader holds while it leads. */
interface Tenure {
  leaseId: LeaseId;
  term: number;
  /** Monotonic ms past which this candidate no longer counts itself leader. */
  deadlineMonoMs: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  lastError: string | undefined;
}

/** The margin a leader gives up before etcd could expire a lease of `ttlMs`. */
export function safetyMarginMs(ttlMs: number): number {
  return Math.ceil(ttlMs * coordinationLimits.leaseSafetyMarginShare);
}

export class LeaderElection {
  private readonly etcd: EtcdClient;
  private readonly key: string;
  private readonly candidate: Candidate;
  private readonly value: string;
  private readonly ttlMs: number;
  private readonly clock: Clock;
  private readonly options: LeaderElectionOptions;
  private running = false;
  private loop: Promise<void> | undefined;
  private tenure: Tenure | undefined;
  private observed: Leader | undefined;
  /** Leases of past tenures, revoked once etcd answers so their key goes at once. */
  private readonly staleLeases: LeaseId[] = [];
  /** Wakes the loop from a pause or a watch (stop, resign, demotion). */
  private readonly wakers = new Set<() => void>();

  constructor(options: LeaderElectionOptions) {
    this.options = options;
    this.etcd = options.etcd;
    this.key = options.key;
    this.candidate = { id: options.candidate.id, address: options.candidate.address };
    this.value = JSON.stringify(this.candidate);
    this.ttlMs = options.leaseTtlMs ?? coordinationLimits.leaseTtlMsDefault;
    this.clock = options.clock ?? systemClock;
    checkOptions(this.ttlMs, this.value);
  }

  /** Begins campaigning (again, once a resign() has resolved). */
  start(): void {
    if (this.running) return;
    assert(this.loop === undefined && this.tenure === undefined, "a stopped election holds nothing");
    this.running = true;
    this.loop = this.run();
  }

  /** Leader right now, by the etcd lease and the local clock (see the top of this file). */
  isLeader(): boolean {
    return this.tenure !== undefined && this.clock.monoMs() < this.tenure.deadlineMonoMs;
  }

  /** This candidate's term while it leads. */
  term(): number | undefined {
    return this.isLeader() ? this.tenure?.term : undefined;
  }

  /** The leader as last seen (this candidate itself while it leads); undefined when none is known. */
  currentLeader(): Leader | undefined {
    if (this.tenure !== undefined && !this.isLeader()) return undefined;
    return this.observed === undefined ? undefined : { ...this.observed };
  }

  /** The leader as etcd has it now (one read; undefined when the key is absent or unreadable). */
  async readLeader(): Promise<Leader | undefined> {
    const { kvs } = await this.etcd.range(this.key);
    return kvs[0] === undefined ? undefined : leaderOf(kvs[0]);
  }

  /** Steps down if leading (revoking the lease deletes the key at once) and stops campaigning. */
  async resign(): Promise<void> {
    this.running = false;
    if (this.tenure !== undefined) this.demote(this.tenure, "resigned", "resign() was called");
    this.wake();
    await this.loop;
    this.loop = undefined;
    assert(this.tenure === undefined, "a resigned candidate holds no tenure");
    try {
      await this.revokeStaleLeases(coordinationLimits.etcdRequestTimeoutMs);
    } catch (error) {
      this.log(`could not revoke the lease on resigning (it expires within ${this.ttlMs} ms by itself): ${toMictlanxError(error).message}`);
    }
    this.setObserved(undefined);
  }

  /** Steps until stopped; after failures in a row it waits longer, up to a keepalive period. */
  private async run(): Promise<void> {
    let failures = 0;
    while (this.running) {
      try {
        await this.step();
        failures = 0;
      } catch (error) {
        if (!this.running) break;
        failures += 1;
        const retryMs = Math.min(coordinationLimits.electionRetryMs * 2 ** Math.min(failures - 1, 10), this.keepalivePeriodMs());
        this.log(`election step failed, trying again in ${retryMs} ms: ${toMictlanxError(error).message}`);
        this.setObserved(undefined);
        await this.pause(retryMs);
      }
    }
  }

  private keepalivePeriodMs(): number {
    return Math.floor(this.ttlMs / coordinationLimits.leaseKeepalivesPerTtl);
  }

  /** One round: clean up, then follow the leader there is, or try to become it. */
  private async step(): Promise<void> {
    await this.revokeStaleLeases();
    const { revision, kvs } = await this.etcd.range(this.key);
    const holder = kvs[0];
    if (holder !== undefined) {
      this.setObserved(leaderOf(holder, this.options.log));
      await this.watchUntilGone(revision + 1);
      return;
    }
    const won = await this.campaign();
    if (won !== undefined) await this.lead(won);
  }

  /** Grant a lease and create the key with it if it is still absent; the tenure if this candidate won. */
  private async campaign(): Promise<Tenure | undefined> {
    if (!this.running) return undefined;
    const sentMonoMs = this.clock.monoMs();
    const lease = await this.etcd.leaseGrant(this.ttlMs, { timeoutMs: this.ttlMs });
    let holder: KeyValue | undefined;
    try {
      const result = await this.etcd.txn(
        {
          compare: [{ key: this.key, target: "create_revision", value: 0 }],
          success: [{ put: { key: this.key, value: this.value, leaseId: lease.id } }, { range: { key: this.key } }],
          failure: [{ range: { key: this.key } }],
        },
        { timeoutMs: this.ttlMs },
      );
      const read = result.responses.at(-1);
      holder = read !== undefined && "range" in read ? read.range.kvs[0] : undefined;
    } catch (error) {
      this.rememberStale(lease.id); // the create may have been applied: revoking deletes it
      throw error;
    }
    // A retried transaction that had been applied fails its compare: the key with this
    // candidate's lease is still this candidate's win.
    const deadlineMonoMs = sentMonoMs + lease.ttlMs - safetyMarginMs(lease.ttlMs);
    if (holder?.leaseId === lease.id && this.running && this.clock.monoMs() < deadlineMonoMs) {
      assert(holder.createRevision > 0, "a created key has a create revision");
      return { leaseId: lease.id, term: holder.createRevision, deadlineMonoMs, timer: undefined, lastError: undefined };
    }
    this.rememberStale(lease.id);
    if (holder !== undefined && holder.leaseId !== lease.id) this.setObserved(leaderOf(holder, this.options.log));
    return undefined;
  }

  /** Holds the lease: a keepalive every TTL/keepalivesPerTtl until demoted. */
  private async lead(tenure: Tenure): Promise<void> {
    if (!this.running) return this.rememberStale(tenure.leaseId); // resigned while the win came in
    assert(this.tenure === undefined, "one tenure at a time");
    this.tenure = tenure;
    this.armDeadline(tenure);
    this.setObserved({ ...this.candidate, term: tenure.term });
    this.log(`elected leader of ${this.key} with term ${tenure.term}`);
    this.callback(() => this.options.onElected?.(tenure.term));
    while (this.tenure === tenure) {
      await this.pause(this.keepalivePeriodMs());
      if (this.tenure !== tenure) break;
      await this.keepAlive(tenure);
    }
    assert(this.tenure !== tenure, "a leader leaves lead() only demoted");
  }

  private async keepAlive(tenure: Tenure): Promise<void> {
    const sentMonoMs = this.clock.monoMs();
    const leftMs = Math.floor(tenure.deadlineMonoMs - sentMonoMs);
    if (leftMs <= 0) return this.demote(tenure, "deadline", this.deadlineDetail(tenure));
    let ttlMs: number;
    try {
      ({ ttlMs } = await this.etcd.leaseKeepAlive(tenure.leaseId, { timeoutMs: leftMs }));
    } catch (error) {
      tenure.lastError = toMictlanxError(error).message;
      this.log(`keepalive of lease ${tenure.leaseId} failed (${leftMs} ms left before stepping down): ${tenure.lastError}`);
      return;
    }
    if (this.tenure !== tenure) return;
    if (ttlMs <= 0) return this.demote(tenure, "lease_lost", `etcd no longer has lease ${tenure.leaseId}: it expired there`);
    tenure.lastError = undefined;
    tenure.deadlineMonoMs = Math.max(tenure.deadlineMonoMs, sentMonoMs + ttlMs - safetyMarginMs(ttlMs));
    this.armDeadline(tenure);
    await this.checkKey(tenure);
  }

  /** The key must still be this tenure's: same creation, same lease. A failed read proves nothing. */
  private async checkKey(tenure: Tenure): Promise<void> {
    const leftMs = Math.floor(tenure.deadlineMonoMs - this.clock.monoMs());
    if (leftMs <= 0) return;
    const read = await this.etcd.range(this.key, { timeoutMs: leftMs }).catch(() => undefined);
    if (read === undefined || this.tenure !== tenure) return;
    const kv = read.kvs[0];
    if (kv === undefined || kv.createRevision !== tenure.term || kv.leaseId !== tenure.leaseId) {
      const now = kv === undefined ? "it is gone" : `it now has term ${kv.createRevision}`;
      this.demote(tenure, "key_lost", `the leader key ${this.key} is no longer this leader's: ${now}`);
    }
  }

  private armDeadline(tenure: Tenure): void {
    clearTimeout(tenure.timer);
    const inMs = Math.max(0, tenure.deadlineMonoMs - this.clock.monoMs());
    tenure.timer = setTimeout(() => this.demote(tenure, "deadline", this.deadlineDetail(tenure)), inMs);
  }

  private deadlineDetail(tenure: Tenure): string {
    const why = tenure.lastError === undefined ? "no keepalive could be sent in time (was this process paused?)" : `the last attempt failed: ${tenure.lastError}`;
    return `no keepalive of lease ${tenure.leaseId} was confirmed within ${this.ttlMs - safetyMarginMs(this.ttlMs)} ms; ${why}`;
  }

  /** Ends a tenure once; `isLeader()` is false before the callback runs. */
  private demote(tenure: Tenure, reason: DemotionReason, detail: string): void {
    if (this.tenure !== tenure) return;
    this.tenure = undefined;
    clearTimeout(tenure.timer);
    this.rememberStale(tenure.leaseId);
    if (this.observed?.term === tenure.term) this.setObserved(undefined);
    assert(!this.isLeader(), "a demoted candidate is not leader");
    this.log(`no longer leader of ${this.key} (term ${tenure.term}): ${reason}: ${detail}`);
    this.callback(() => this.options.onDemoted?.(reason, detail));
    this.wake();
  }

  /** Watches the key from `startRevision` until it is deleted, a TTL passes, or the loop is woken. */
  private async watchUntilGone(startRevision: number): Promise<void> {
    const controller = new AbortController();
    const waker = () => controller.abort();
    this.wakers.add(waker);
    const timer = setTimeout(waker, this.ttlMs); // read the key afresh now and then
    try {
      for await (const events of this.etcd.watch(this.key, { startRevision, signal: controller.signal })) {
        for (const event of events) {
          if (event.type === "delete") return this.setObserved(undefined);
          this.setObserved(leaderOf(event.kv, this.options.log));
        }
      }
    } finally {
      clearTimeout(timer);
      this.wakers.delete(waker);
      controller.abort();
    }
  }

  private async revokeStaleLeases(timeoutMs?: number): Promise<void> {
    while (this.staleLeases.length > 0) {
      const leaseId = this.staleLeases[0];
      assert(leaseId !== undefined, "a stale lease is queued");
      try {
        await this.etcd.leaseRevoke(leaseId, timeoutMs === undefined ? undefined : { timeoutMs });
      } catch (error) {
        if (toMictlanxError(error).code !== "not_found") throw error; // not found: expired already
      }
      this.staleLeases.shift();
    }
  }

  private rememberStale(leaseId: LeaseId): void {
    if (this.staleLeases.includes(leaseId)) return;
    this.staleLeases.push(leaseId);
    if (this.staleLeases.length > coordinationLimits.electionStaleLeasesMax) this.staleLeases.shift(); // it expires by itself
  }

  private setObserved(leader: Leader | undefined): void {
    const same = leader?.id === this.observed?.id && leader?.term === this.observed?.term && leader?.address === this.observed?.address;
    this.observed = leader;
    if (!same) this.callback(() => this.options.onLeaderChanged?.(leader === undefined ? undefined : { ...leader }));
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  private wake(): void {
    for (const waker of [...this.wakers]) waker();
  }

  /** A callback that throws must not stop the election. */
  private callback(run: () => void): void {
    try {
      run();
    } catch (error) {
      this.log(`an election callback threw: ${toMictlanxError(error).message}`);
    }
  }

  private log(line: string): void {
    this.options.log?.(`[election ${this.candidate.id}] ${line}`);
  }
}

function checkOptions(ttlMs: number, value: string): void {
  const { leaseTtlMsMin, leaseTtlMsMax, electionValueBytesMax } = coordinationLimits;
  if (!Number.isInteger(ttlMs) || ttlMs % 1_000 !== 0 || ttlMs < leaseTtlMsMin || ttlMs > leaseTtlMsMax) {
    throw new UsageError(`a lease TTL of ${ttlMs} ms cannot be used: etcd leases are whole seconds, from ${leaseTtlMsMin / 1_000} s to ${leaseTtlMsMax / 1_000} s`);
  }
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > electionValueBytesMax) throw new UsageError(`a candidate's id and address take ${bytes} bytes in the leader key; at most ${electionValueBytesMax} are allowed`);
}

/** The leader a key names; undefined (and a log line) when its value is not a candidate's. */
function leaderOf(kv: KeyValue, log?: (line: string) => void): Leader | undefined {
  let json: unknown;
  try {
    json = JSON.parse(kv.value);
  } catch {
    json = undefined;
  }
  const parsed = candidateValue.safeParse(json);
  if (!parsed.success) {
    log?.(`the leader key ${kv.key} holds something that is not a candidate (${kv.value.slice(0, 80)}); waiting for it to go`);
    return undefined;
  }
  return { id: parsed.data.id, address: parsed.data.address, term: kv.createRevision };
}
