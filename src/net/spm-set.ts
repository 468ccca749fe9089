// Several SPMs of one VSS, as one service: `--spm a,b,c`. Any SPM answers reads (a standby from
// the catalog); a standby refuses writes naming the leader, and the call is sent there at once,
// so a caller needs no exact knowledge of who leads to be correct; preferring the leader only
// saves the standby's round trip.
//
// A call goes to the preferred SPM: the leader when known (learned from heartbeat replies'
// `leadership`, see noteLeadership), else the one that answered last. When that one cannot be
// reached (refused, reset, no answer in time: an error raised on this side, never one the SPM
// sent back) the next of the list is asked, each at most once per call, and a call that none
// answered fails naming every address tried. Other remote errors (not_found, conflict, a
// standby's `unavailable` while no leader is elected yet…) are the answer, passed on as they are.
import { assert } from "../lib/assert.ts";
import { MictlanxError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { leaderOfStandbyRefusal, spmOps, type SpmLeadership } from "../protocol/spm.ts";
import type { ArgsOf, OpTable, ResultOf } from "../protocol/envelope.ts";
import { formatAddress, parseAddress } from "./address.ts";
import type { CallOptions } from "./connection.ts";
import { ServiceClient, type RpcPool } from "./pool.ts";

type SpmOps = typeof spmOps;

/** What a role needs of the SPM: `call`, as ServiceClient and SpmSet both have it. */
export interface ServiceCaller<T extends OpTable> {
  call<K extends keyof T & string>(op: K, args: ArgsOf<T, K>, options?: CallOptions): Promise<ResultOf<T, K>>;
}

export interface SpmSetOptions<T extends OpTable> {
  /** The op table (default spmOps; tests stand up smaller services). */
  ops?: T;
  /** Told when the leader this set prefers changes (undefined: none known now). */
  onLeaderChanged?: (leader: string | undefined, term: number | undefined) => void;
}

/** A leader found unreachable at this term is not taken back from a reply of the same term (a standby's stale word). */
interface Shunned {
  index: number;
  term: number;
}

export class SpmSet<T extends OpTable = SpmOps> implements ServiceCaller<T> {
  /** The addresses, as given and normalised (host:port), in list order. */
  readonly addresses: readonly string[];
  private readonly clients: ServiceClient<T>[];
  private leaderIndex: number | undefined;
  private leaderTerm: number | undefined;
  private lastAnswered = 0;
  private shunned: Shunned | undefined;

  constructor(
    pool: RpcPool,
    addresses: readonly string[],
    private readonly options: SpmSetOptions<T> = {},
  ) {
    const parsed = addresses.map((text) => parseAddress(text)); // a usage error names a bad one
    this.addresses = [...new Set(parsed.map(formatAddress))];
    assert(this.addresses.length >= 1, "an SPM set needs at least one address");
    assert(this.addresses.length <= limits.spmAddressesMax, `at most ${limits.spmAddressesMax} SPM addresses (parseSpmList checks it first)`);
    const ops = (options.ops ?? spmOps) as T;
    this.clients = this.addresses.map((address) => new ServiceClient(ops, pool, parseAddress(address)));
  }

  /** The leader this set knows of, if any. */
  get leader(): string | undefined {
    return this.leaderIndex === undefined ? undefined : this.addresses[this.leaderIndex];
  }

  /** Where the next call goes first. */
  get preferred(): string {
    return this.addresses[this.preferredIndex()] as string;
  }

  /** One SPM of the set by its address (heartbeats go to each). */
  at(address: string): ServiceClient<T> {
    const index = this.addresses.indexOf(address);
    assert(index >= 0, `${address} is one of this set's SPMs`);
    return this.clients[index] as ServiceClient<T>;
  }

  async call<K extends keyof T & string>(op: K, args: ArgsOf<T, K>, options?: CallOptions): Promise<ResultOf<T, K>> {
    const queue = this.order();
    const asked = new Set<number>();
    const tried: string[] = [];
    let last: MictlanxError | undefined;
    let refusal: MictlanxError | undefined;
    for (let index = queue.shift(); index !== undefined; index = queue.shift()) {
      if (asked.has(index)) continue;
      asked.add(index);
      try {
        const result = await (this.clients[index] as ServiceClient<T>).call(op, args, options);
        this.lastAnswered = index;
        return result;
      } catch (error) {
        const leader = this.redirected(index, error);
        if (leader !== undefined && !asked.has(leader)) {
          refusal = error as MictlanxError;
          queue.unshift(leader); // a standby named the leader: ask it next, in this same call
          continue;
        }
        if (!unreachable(error)) throw error;
        last = error;
        tried.push(this.addresses[index] as string);
        this.unreachableAt(index);
      }
    }
    if (refusal) throw refusal; // the leader a standby named could not be reached either: the standby's word stands (callers retry it)
    assert(last !== undefined && tried.length === this.addresses.length, "every SPM was tried once before giving up");
    if (tried.length === 1) throw last; // one SPM: its own error, as before there were several
    throw new MictlanxError(last.code, `no SPM answered ${op} (tried ${tried.join(", ")}); last: ${last.message}`, { cause: last });
  }

  /**
   * A standby refuses writes naming the leader ("SPM A is a standby and takes no writes: the
   * leader is B (term 7)", standbyRefusalMessage in src/protocol/spm.ts): learn it, and say which SPM to ask next
   * when it is one of this set's and was adopted (not a stale word about one found unreachable).
   */
  private redirected(from: number, error: unknown): number | undefined {
    if (!(error instanceof MictlanxError) || !error.remote || error.code !== "unavailable") return undefined;
    const named = leaderOfStandbyRefusal(error.message);
    if (!named) return undefined;
    this.noteLeadership(this.addresses[from] as string, { role: "standby", leader: named.address, term: named.term });
    return this.leaderIndex !== undefined && this.leaderIndex !== from ? this.leaderIndex : undefined;
  }

  /**
   * What an SPM said of who leads (a heartbeat reply's `leadership`). An SPM saying it leads is
   * believed at once; a standby naming a leader is believed unless it names an older term than
   * the one known, or the leader this set just found unreachable at that same term (a standby
   * repeats the old leader until its lease runs out). A leader saying it is a standby now is
   * forgotten. A leader outside this list is not adopted (calls go to the last that answered).
   */
  noteLeadership(from: string, leadership: SpmLeadership | undefined): void {
    if (leadership === undefined) return;
    const fromIndex = this.addresses.indexOf(from);
    if (fromIndex < 0) return;
    if (leadership.role === "leader") {
      if (this.shunned?.index === fromIndex) this.shunned = undefined;
      this.adopt(fromIndex, leadership.term);
      return;
    }
    if (this.leaderIndex === fromIndex) this.adopt(undefined, undefined); // it stepped down
    const named = leadership.leader === undefined ? -1 : this.indexOf(leadership.leader);
    if (named < 0 || named === fromIndex) return;
    if (this.leaderTerm !== undefined && leadership.term !== undefined && leadership.term < this.leaderTerm) return;
    if (this.shunned?.index === named && (leadership.term ?? 0) <= this.shunned.term) return;
    this.adopt(named, leadership.term);
  }

  /** Preferred first, then the rest in list order. */
  private order(): number[] {
    const first = this.preferredIndex();
    return [first, ...this.addresses.keys()].filter((index, position) => position === 0 || index !== first);
  }

  private preferredIndex(): number {
    return this.leaderIndex ?? this.lastAnswered;
  }

  /** The leader could not be reached: ask the others first until a reply names a leader again. */
  private unreachableAt(index: number): void {
    if (index !== this.leaderIndex) return;
    this.shunned = { index, term: this.leaderTerm ?? 0 };
    this.adopt(undefined, undefined);
  }

  private adopt(index: number | undefined, term: number | undefined): void {
    const changed = index !== this.leaderIndex || (index !== undefined && term !== this.leaderTerm);
    this.leaderIndex = index;
    this.leaderTerm = index === undefined ? undefined : term;
    if (changed) this.options.onLeaderChanged?.(this.leader, this.leaderTerm);
  }

  private indexOf(address: string): number {
    try {
      return this.addresses.indexOf(formatAddress(parseAddress(address)));
    } catch {
      return -1; // an SPM's word is not ours to fail on
    }
  }
}


/** Could not reach that SPM (refused, reset, closed, timed out), as opposed to its answer. */
export function unreachable(error: unknown): error is MictlanxError {
  return error instanceof MictlanxError && !error.remote && (error.code === "unavailable" || error.code === "timeout");
}
