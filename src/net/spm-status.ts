// `status` and the TUI with several SPMs: ask each for `vss.status` at once, say what part each
// plays (leader, standby, or down when it cannot be reached), and show the rest of the status
// as the leader sees it (else as any SPM that answered sees it: a standby's registry and catalog
// are as real as the leader's, only its maintenance counters are idle).
import { MictlanxError, toMictlanxError } from "../lib/errors.ts";
import { spmOps, type VssStatus } from "../protocol/spm.ts";
import { formatAddress, parseAddress } from "./address.ts";
import type { CallOptions } from "./connection.ts";
import { ServiceClient, type RpcPool } from "./pool.ts";
import { unreachable } from "./spm-set.ts";

/** One SPM as `status --json` shows it. */
export interface SpmEntry {
  address: string;
  role: "leader" | "standby" | "down";
  term?: number;
  /** Why it is down (what connecting to it said). */
  error?: string;
}

export interface StatusOfSpms {
  /** The leader's status, else the first that answered. */
  status: VssStatus;
  /** Every SPM asked, in the order given. */
  spms: SpmEntry[];
}

export async function statusOfSpms(pool: RpcPool, addresses: readonly string[], options?: CallOptions): Promise<StatusOfSpms> {
  const normalised = addresses.map((address) => formatAddress(parseAddress(address)));
  const answers = await Promise.allSettled(normalised.map((address) => new ServiceClient(spmOps, pool, parseAddress(address)).call("vss.status", {}, options)));
  const spms: SpmEntry[] = [];
  const answered: VssStatus[] = [];
  const failures: MictlanxError[] = [];
  answers.forEach((answer, index) => {
    const address = normalised[index] as string;
    if (answer.status === "fulfilled") {
      answered.push(answer.value);
      spms.push(entryOf(address, answer.value));
      return;
    }
    const error = toMictlanxError(answer.reason);
    failures.push(error);
    spms.push({ address, role: "down", error: error.message });
  });
  const status = chooseStatus(answered);
  if (status === undefined) throw noneAnswered(normalised, failures);
  return { status, spms };
}

/** An SPM from before leadership was reported leads alone: it is the leader. */
function entryOf(address: string, status: VssStatus): SpmEntry {
  const leadership = status.leadership ?? { role: "leader" as const };
  return { address, role: leadership.role, ...(leadership.term === undefined ? {} : { term: leadership.term }) };
}

/** The leader of the largest term (two may claim it for a moment across a failover), else the first answer. */
function chooseStatus(answered: VssStatus[]): VssStatus | undefined {
  let best: VssStatus | undefined;
  for (const status of answered) {
    if (status.leadership?.role === "standby") continue;
    if (!best || (status.leadership?.term ?? 0) > (best.leadership?.term ?? 0)) best = status;
  }
  return best ?? answered[0];
}

function noneAnswered(addresses: readonly string[], failures: MictlanxError[]): MictlanxError {
  const first = failures[0] as MictlanxError;
  if (addresses.length === 1) return first;
  // A refused key or a wrong role is the user's to fix, not a VSS that is down: say that one.
  const refused = failures.find((error) => !unreachable(error));
  if (refused) return refused;
  return new MictlanxError(first.code, `no SPM answered (tried ${addresses.join(", ")}); ${failures.map((error) => error.message).join("; ")}`, { cause: first });
}
