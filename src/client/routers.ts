// The client's view of its routers: work goes to the router with the fewest requests
// outstanding; a router that fails to answer is benched (skipped while others serve) for a
// while that doubles with each failure in a row, up to a ceiling, and is forgiven on its
// next success. Only errors that mean "try again" are retried, with exponential backoff and
// jitter, in two ways:
//   - a router that answers that the VSS cannot do it just now (unavailable, overloaded,
//     timeout, insufficient_peers: an SPM restarting, peers reporting back) is asked again for
//     up to retryWindowMs, so a restart of the control plane is invisible to a client;
//   - a router that does not answer (refused, reset, no reply in time) is not asked again in
//     this call: another router is, up to attemptsMax tries; when every router has refused the
//     connection the call fails at once, so a wrong --router is said at once.
import { RpcPool, parseResult } from "../net/pool.ts";
import type { ClientSecurity } from "../net/connection.ts";
import { formatAddress, parseAddressList, type Address } from "../net/address.ts";
import { routerOps, type RouterOps } from "../protocol/router.ts";
import type { ArgsOf, ResultOf } from "../protocol/envelope.ts";
import { UsageError, toMictlanxError, type ErrorCode } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";

export const clientLimits = {
  /** Attempts per request when routers do not answer (or a chunk arrived damaged), across routers. */
  attemptsMax: 5,
  /** How long a request is retried while a router answers that the VSS cannot serve it just now. */
  retryWindowMs: 15_000,
  backoffMsBase: 25,
  backoffMsMax: 1_000,
  /** How long a router that failed is first skipped while others are available… */
  benchMs: 1_000,
  /** …doubling with each failure in a row, up to this. */
  benchMsMax: 30_000,
} as const;

/** Errors that mean "this router, now, could not": try again, elsewhere if possible. */
export const retryableCodes: ReadonlySet<ErrorCode> = new Set(["unavailable", "timeout", "overloaded"]);
/** What a router may answer while the VSS recovers: asked again for up to retryWindowMs. */
export const passingCodes: ReadonlySet<ErrorCode> = new Set(["unavailable", "timeout", "overloaded", "insufficient_peers"]);

export interface RouterCallOptions {
  /** Codes retried besides unavailable, timeout and overloaded (e.g. `corrupt` for a chunk damaged on the way). */
  alsoRetry?: readonly ErrorCode[];
  /** Receive the reply's payload straight into this buffer when it is exactly its size (see CallOptions.into). */
  into?: Uint8Array;
  /** The whole call, retries included, takes at most this long (each try's timeout is cut to what is left). */
  withinMs?: number;
}

export interface RouterState {
  address: string;
  inFlight: number;
  benchedForMs: number;
  failuresInARow: number;
}

export class RouterSet {
  private readonly addresses: Address[];
  private readonly health = new Map<string, { benchedUntil: number; failures: number }>();
  readonly pool: RpcPool;
  /** Requests retried (a measure of trouble, for stats). */
  retries = 0;

  constructor(
    routers: string | string[],
    private readonly timeoutMs?: number,
    private readonly random: () => number = Math.random,
    private readonly retryWindowMs: number = clientLimits.retryWindowMs,
    security?: ClientSecurity,
  ) {
    if (!Number.isFinite(retryWindowMs) || retryWindowMs < 0) throw new UsageError(`retryWindowMs must be ≥ 0, got ${retryWindowMs}`);
    this.addresses = parseAddressList(Array.isArray(routers) ? routers.join(",") : routers);
    if (this.addresses.length === 0) throw new UsageError("no routers given");
    this.pool = new RpcPool({ role: "router", expectRole: "router", connectAttempts: 1, ...(security ? { security } : {}) });
  }

  get size(): number {
    return this.addresses.length;
  }

  async call<K extends keyof RouterOps & string>(op: K, args: ArgsOf<RouterOps, K>, options: RouterCallOptions = {}): Promise<ResultOf<RouterOps, K>> {
    const startedMs = performance.now();
    const deadlineMs = options.withinMs === undefined ? undefined : startedMs + options.withinMs;
    const silent = new Set<string>(); // routers that did not answer in this call
    let tries = 0; // tries that count against attemptsMax
    for (let attempt = 0; ; attempt += 1) {
      if (attempt > 0) {
        this.retries += 1;
        await Bun.sleep(jitteredBackoffMs(attempt, this.random));
      }
      const address = this.pick(silent);
      const name = formatAddress(address);
      const timeoutMs = this.tryTimeoutMs(deadlineMs);
      try {
        const raw = await this.pool.call(address, op, args, {
          ...(timeoutMs === undefined ? {} : { timeoutMs }),
          ...(options.into === undefined ? {} : { into: options.into }),
        });
        this.health.delete(name);
        return parseResult(routerOps, op, raw, `router ${name}`);
      } catch (error) {
        const typed = toMictlanxError(error);
        if (deadlineMs !== undefined && performance.now() >= deadlineMs) throw typed;
        const asked = (options.alsoRetry ?? []).includes(typed.code);
        if (asked) tries += 1;
        else if (typed.remote && passingCodes.has(typed.code)) {
          if (performance.now() - startedMs >= this.retryWindowMs) throw typed;
          continue;
        } else if (!typed.remote && retryableCodes.has(typed.code)) {
          tries += 1;
          this.bench(name);
          silent.add(name);
          if (typed.code === "unavailable" && silent.size >= this.addresses.length) throw typed; // every router refused: say so now
        } else throw typed;
        if (tries >= clientLimits.attemptsMax) throw typed;
      }
    }
  }

  /** One try's timeout: the client's, cut to what is left before the call's deadline. */
  private tryTimeoutMs(deadlineMs: number | undefined): number | undefined {
    if (deadlineMs === undefined) return this.timeoutMs;
    const left = Math.max(1, Math.ceil(deadlineMs - performance.now()));
    return Math.min(this.timeoutMs ?? limits.requestTimeoutMsDefault, left);
  }

  states(): RouterState[] {
    const now = Date.now();
    return this.addresses.map((address) => {
      const name = formatAddress(address);
      const health = this.health.get(name);
      return { address: name, inFlight: this.pool.inFlight(address), benchedForMs: Math.max(0, (health?.benchedUntil ?? 0) - now), failuresInARow: health?.failures ?? 0 };
    });
  }

  close(): void {
    this.pool.close();
  }

  private bench(name: string): void {
    const failures = (this.health.get(name)?.failures ?? 0) + 1;
    const ms = Math.min(clientLimits.benchMsMax, clientLimits.benchMs * 2 ** (failures - 1));
    this.health.set(name, { failures, benchedUntil: Date.now() + ms });
  }

  /**
   * The least-loaded router that is not benched, preferring those not in `avoid` (silent in this
   * call); when all are benched, the one back soonest.
   */
  private pick(avoid: ReadonlySet<string> = new Set()): Address {
    const now = Date.now();
    const benchedUntil = (address: Address) => this.health.get(formatAddress(address))?.benchedUntil ?? 0;
    const fresh = this.addresses.filter((address) => !avoid.has(formatAddress(address)));
    const candidates = fresh.length > 0 ? fresh : this.addresses;
    const ready = candidates.filter((address) => benchedUntil(address) <= now);
    if (ready.length === 0) return candidates.reduce((best, address) => (benchedUntil(address) < benchedUntil(best) ? address : best));
    let best = ready[0] as Address;
    let bestLoad = Number.POSITIVE_INFINITY;
    const offset = Math.floor(this.random() * ready.length); // break ties fairly
    for (let i = 0; i < ready.length; i += 1) {
      const address = ready[(i + offset) % ready.length] as Address;
      const load = this.pool.inFlight(address);
      if (load < bestLoad) {
        best = address;
        bestLoad = load;
      }
    }
    return best;
  }
}

/** Exponential backoff with jitter: a wait in [ceiling/2, ceiling), ceiling = min(max, base·2^attempt). */
export function jitteredBackoffMs(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(clientLimits.backoffMsMax, clientLimits.backoffMsBase * 2 ** attempt);
  return ceiling / 2 + random() * (ceiling / 2);
}
