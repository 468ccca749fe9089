// Which SPM leads (docs/ha.md). Alone (no --coordination) an SPM always leads, with no term.
// With --coordination it is a candidate in an etcd election (src/coordination): the leader runs
// everything that writes on its own initiative and takes every write; a standby serves reads
// and refuses writes with `unavailable`, naming the leader, which routers and clients retry
// (they find the leader from heartbeat replies).
//
// Becoming leader is not enough to act as one: the new leader first claims its term in the
// catalog (an empty group fenced with it, so every older leader's later write is refused), and
// only once that is durable does `leading()` say yes. `onPromoted` then runs the leader's start
// work (the registry's view written, uploads renewed) before maintenance begins.
import { EtcdClient } from "../../coordination/etcd.ts";
import { LeaderElection, leaderKey, type Leader } from "../../coordination/election.ts";
import { UnavailableError, toMictlanxError } from "../../lib/errors.ts";
import type { Clock } from "../../lib/clock.ts";
import { standbyRefusalMessage, type SpmLeadership } from "../../protocol/spm.ts";

export interface Leadership {
  /** This SPM leads now (its term claimed in the catalog). */
  leading(): boolean;
  /** The term every write is fenced with; undefined for an SPM alone. */
  term(): number | undefined;
  /** What replies and status say of it. */
  view(): SpmLeadership;
  /** The error a standby answers a write with. */
  refusal(): UnavailableError;
  start(): void;
  stop(): Promise<void>;
}

/** An SPM alone: it always leads. */
export function soloLeadership(): Leadership {
  return {
    leading: () => true,
    term: () => undefined,
    view: () => ({ role: "leader" }),
    refusal: () => new UnavailableError("this SPM leads; no write is refused for leadership"),
    start: () => {},
    stop: async () => {},
  };
}

export interface ElectedLeadershipOptions {
  /** etcd://host:port[,host:port…] */
  endpoints: string;
  vssId: string;
  /** This SPM as a candidate: its node id and the address routers and peers dial. */
  id: string;
  address: string;
  leaseTtlMs?: number;
  clock: Clock;
  /** Claim `term` in the catalog (an empty group fenced with it); leading() waits for it. */
  claim: (term: number) => Promise<void>;
  /** After the claim: the leader's start work. */
  onPromoted: (term: number) => Promise<void>;
  event: (kind: string, message: string) => void;
}

export function electedLeadership(options: ElectedLeadershipOptions): Leadership {
  const election: LeaderElection = new LeaderElection({
    etcd: new EtcdClient(options.endpoints),
    key: leaderKey(options.vssId),
    candidate: { id: options.id, address: options.address },
    ...(options.leaseTtlMs === undefined ? {} : { leaseTtlMs: options.leaseTtlMs }),
    clock: options.clock,
    onElected: (term) => void promote(term),
    onDemoted: (reason, detail) => {
      claimed = undefined;
      options.event("spm_demoted", `this SPM no longer leads (${reason}: ${detail}); it serves reads as a standby and follows the new leader`);
    },
    onLeaderChanged: (leader) => {
      seen = leader;
      if (leader && leader.id !== options.id) options.event("spm_leader", `SPM ${leader.id} at ${leader.address} leads at term ${leader.term}`);
    },
    log: (line) => options.event("election", line),
  });
  /** The term whose claim is durable in the catalog, while the election still says we lead. */
  let claimed: number | undefined;
  let seen: Leader | undefined;

  const promote = async (term: number): Promise<void> => {
    try {
      await options.claim(term);
      if (election.term() !== term) return; // demoted (or elected again) meanwhile
      await options.onPromoted(term);
      if (election.term() !== term) return;
      claimed = term;
      options.event("spm_leading", `this SPM leads at term ${term}`);
    } catch (error) {
      // Not able to claim (the catalog away, or a newer term already there): step down, so
      // another candidate, or this one later, can try.
      options.event("spm_claim_failed", `this SPM was elected at term ${term} but could not claim it in the catalog: ${toMictlanxError(error).message}; it steps down`);
      await election.resign().catch(() => {});
      election.start();
    }
  };

  const leading = () => claimed !== undefined && election.isLeader() && election.term() === claimed;
  return {
    leading,
    term: () => (leading() ? claimed : election.term()),
    view: () => {
      if (leading()) return { role: "leader", term: claimed!, leader: options.address };
      const leader = seen ?? election.currentLeader();
      return { role: "standby", ...(leader ? { term: leader.term, leader: leader.address } : {}) };
    },
    refusal: () => {
      const leader = seen ?? election.currentLeader();
      return new UnavailableError(standbyRefusalMessage(options.address, leader && leader.id !== options.id ? leader : undefined));
    },
    start: () => election.start(),
    stop: async () => {
      claimed = undefined;
      await election.resign().catch(() => {});
    },
  };
}
