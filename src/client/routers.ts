// The client's view of its routers: work goes to the router with the fewest requests
// outstanding; a router that fails to answer is benched for a moment while others serve;
// a failed request is retried on another router with exponential backoff and jitter, a
// bounded number of times. Only errors that mean "try elsewhere" are retried.
import { RpcPool, parseResult } from "../net/pool.ts";
import { formatAddress, parseAddressList, type Address } from "../net/address.ts";
import { routerOps, type RouterOps } from "../protocol/router.ts";
import type { ArgsOf, ResultOf } from "../protocol/envelope.ts";
import { MictlanxError, UsageError, toMictlanxError } from "../lib/errors.ts";

export const clientLimits = {
  /** Attempts per request across routers. */
  attemptsMax: 5,
  backoffMsBase: 25,
  backoffMsMax: 1_000,
  /** How long a router that failed is skipped while others are available. */
  benchMs: 2_000,
} as const;

const retryable = new Set(["unavailable", "timeout", "overloaded"]);

export class RouterSet {
  private readonly addresses: Address[];
  private readonly benchedUntil = new Map<string, number>();
  readonly pool: RpcPool;

  constructor(routers: string | string[], private readonly timeoutMs?: number) {
    this.addresses = parseAddressList(Array.isArray(routers) ? routers.join(",") : routers);
    if (this.addresses.length === 0) throw new UsageError("no routers given");
    this.pool = new RpcPool({ role: "router", connectAttempts: 1 });
  }

  get size(): number {
    return this.addresses.length;
  }

  async call<K extends keyof RouterOps & string>(op: K, args: ArgsOf<RouterOps, K>): Promise<ResultOf<RouterOps, K>> {
    let lastError: MictlanxError | undefined;
    for (let attempt = 0; attempt < clientLimits.attemptsMax; attempt += 1) {
      if (attempt > 0) await Bun.sleep(jitteredBackoffMs(attempt));
      const address = this.pick();
      try {
        const raw = await this.pool.call(address, op, args, this.timeoutMs === undefined ? {} : { timeoutMs: this.timeoutMs });
        return parseResult(routerOps, op, raw, `router ${formatAddress(address)}`);
      } catch (error) {
        lastError = toMictlanxError(error);
        if (!retryable.has(lastError.code)) throw lastError;
        this.benchedUntil.set(formatAddress(address), Date.now() + clientLimits.benchMs);
      }
    }
    throw lastError ?? new MictlanxError("unavailable", "no router answered");
  }

  close(): void {
    this.pool.close();
  }

  private pick(): Address {
    const now = Date.now();
    const ready = this.addresses.filter((address) => (this.benchedUntil.get(formatAddress(address)) ?? 0) <= now);
    const choices = ready.length > 0 ? ready : this.addresses;
    let best = choices[0] as Address;
    let bestLoad = Number.POSITIVE_INFINITY;
    const offset = Math.floor(Math.random() * choices.length); // break ties fairly
    for (let i = 0; i < choices.length; i += 1) {
      const address = choices[(i + offset) % choices.length] as Address;
      const load = this.pool.inFlight(address);
      if (load < bestLoad) {
        best = address;
        bestLoad = load;
      }
    }
    return best;
  }
}

function jitteredBackoffMs(attempt: number): number {
  const ceiling = Math.min(clientLimits.backoffMsMax, clientLimits.backoffMsBase * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}
