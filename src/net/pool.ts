// Client-side connection pool: a few connections per address, reused; a call picks the one
// with the fewest requests outstanding. Opening retries with exponential backoff and full
// jitter, a bounded number of times, and the final error names the address.
import { z } from "zod";
import { limits } from "../lib/limits.ts";
import { BadRequestError, MictlanxError } from "../lib/errors.ts";
import { describeZodError, type ArgsOf, type OpTable, type ResultOf } from "../protocol/envelope.ts";
import { RpcConnection, type CallOptions } from "./connection.ts";
import { formatAddress, type Address } from "./address.ts";

export interface PoolOptions {
  role: string;
  connectionsPerAddress?: number;
  connectAttempts?: number;
  connectTimeoutMs?: number;
  /** Deterministic jitter in tests. */
  random?: () => number;
}

interface Slot {
  connections: RpcConnection[];
  opening: Promise<RpcConnection> | null;
}

export class RpcPool {
  private readonly slots = new Map<string, Slot>();
  private closed = false;

  constructor(private readonly options: PoolOptions) {}

  async call(address: Address, op: string, args: unknown, callOptions?: CallOptions): Promise<unknown> {
    const connection = await this.connection(address);
    return connection.call(op, args, callOptions);
  }

  /** Outstanding requests to an address (for least-loaded choices). */
  inFlight(address: Address): number {
    const slot = this.slots.get(formatAddress(address));
    return slot ? slot.connections.reduce((sum, connection) => sum + connection.inFlight, 0) : 0;
  }

  close(): void {
    this.closed = true;
    for (const slot of this.slots.values()) for (const connection of slot.connections) connection.close();
    this.slots.clear();
  }

  private async connection(address: Address): Promise<RpcConnection> {
    if (this.closed) throw new MictlanxError("unavailable", "connection pool is closed");
    const key = formatAddress(address);
    let slot = this.slots.get(key);
    if (!slot) {
      slot = { connections: [], opening: null };
      this.slots.set(key, slot);
    }
    slot.connections = slot.connections.filter((connection) => !connection.closed);
    const best = leastBusy(slot.connections);
    const perAddressMax = this.options.connectionsPerAddress ?? limits.connectionsPerAddressMax;
    const wantAnother = !best || (best.inFlight > 0 && slot.connections.length < perAddressMax);
    if (!wantAnother && best) return best;
    if (slot.opening) return best ?? slot.opening;
    slot.opening = this.openWithRetry(address);
    const opening = slot.opening;
    try {
      const connection = await opening;
      slot.connections.push(connection);
      return connection;
    } catch (error) {
      if (best && !best.closed) return best;
      throw error;
    } finally {
      if (slot.opening === opening) slot.opening = null;
    }
  }

  private async openWithRetry(address: Address): Promise<RpcConnection> {
    const attempts = this.options.connectAttempts ?? limits.connectAttemptsMax;
    const random = this.options.random ?? Math.random;
    let lastError: unknown;
    for (let attempt = 0; attempt < attempts; attempt += 1) {
      if (attempt > 0) await Bun.sleep(backoffMs(attempt, random));
      try {
        return await RpcConnection.open(address, {
          role: this.options.role,
          ...(this.options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: this.options.connectTimeoutMs }),
        });
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }
}

/** Full jitter: a random wait in [0, min(max, base·2^attempt)). */
export function backoffMs(attempt: number, random: () => number): number {
  const ceiling = Math.min(limits.connectBackoffMsMax, limits.connectBackoffMsBase * 2 ** attempt);
  return Math.floor(random() * ceiling);
}

function leastBusy(connections: RpcConnection[]): RpcConnection | undefined {
  let best: RpcConnection | undefined;
  for (const connection of connections) if (!best || connection.inFlight < best.inFlight) best = connection;
  return best;
}

/** A typed view of one service at one address: arguments checked by types, results by zod. */
export class ServiceClient<T extends OpTable> {
  constructor(
    private readonly ops: T,
    private readonly pool: RpcPool,
    readonly address: Address,
  ) {}

  async call<K extends keyof T & string>(op: K, args: ArgsOf<T, K>, options?: CallOptions): Promise<ResultOf<T, K>> {
    const raw = await this.pool.call(this.address, op, args, options);
    return parseResult(this.ops, op, raw, formatAddress(this.address));
  }
}

export function parseResult<T extends OpTable, K extends keyof T & string>(ops: T, op: K, raw: unknown, from: string): ResultOf<T, K> {
  const spec = ops[op];
  if (!spec) throw new BadRequestError(`unknown operation "${op}"`);
  const parsed = (spec.result as z.ZodType).safeParse(raw);
  if (!parsed.success) {
    throw new MictlanxError("bad_request", `${from} answered ${op} with the wrong shape: ${describeZodError(parsed.error)}`);
  }
  return parsed.data as ResultOf<T, K>;
}
