// Client-side connection pool: a few connections per address, reused; a call picks the one
// with the fewest requests outstanding. Opening retries with exponential backoff and full
// jitter, a bounded number of times, and the final error names the address.
//
// What it keeps is bounded and expires, since the addresses come from others (a router calls
// whatever peers the SPM names): at most poolAddressesMax addresses (the least recently used
// is closed past it), and a connection unused for poolConnectionIdleMs is closed (an address
// left with none is forgotten), before any server would close it as idle. A request that the
// server never read (the connection closed under it) is sent again on a fresh connection.
import { z } from "zod";
import { limits } from "../lib/limits.ts";
import { assert } from "../lib/assert.ts";
import { BadRequestError, MictlanxError } from "../lib/errors.ts";
import { describeZodError, type ArgsOf, type NodeIdentity, type OpTable, type ResultOf, type ServerRole } from "../protocol/envelope.ts";
import { RequestNotRunError, RpcConnection, type CallOptions, type ClientSecurity } from "./connection.ts";
import { formatAddress, type Address } from "./address.ts";

export interface PoolOptions {
  role: string;
  /** This process is one of the VSS's nodes: every connection says so first (servers never evict it). Clients send none. */
  identity?: NodeIdentity;
  /** Every address must be this kind of server (checked on connect: see ConnectionOptions.expectRole). */
  expectRole?: ServerRole;
  /** TLS (and a client's access key) on every connection; plain TCP without it. */
  security?: ClientSecurity;
  connectionsPerAddress?: number;
  connectAttempts?: number;
  connectTimeoutMs?: number;
  addressesMax?: number;
  connectionIdleMs?: number;
  /** Deterministic jitter in tests. */
  random?: () => number;
}

interface Slot {
  connections: RpcConnection[];
  opening: Promise<RpcConnection> | null;
}

export class RpcPool {
  /** In order of use, least recent first (a used slot is moved to the end). */
  private readonly slots = new Map<string, Slot>();
  private closed = false;
  private lastSweepMs = performance.now();

  constructor(private readonly options: PoolOptions) {}

  /** Addresses the pool holds connections (or an opening) to. */
  get addressCount(): number {
    return this.slots.size;
  }

  async call(address: Address, op: string, args: unknown, callOptions?: CallOptions): Promise<unknown> {
    for (let resends = 0; ; resends += 1) {
      const connection = await this.connection(address);
      try {
        return await connection.call(op, args, callOptions);
      } catch (error) {
        if (!(error instanceof RequestNotRunError) || resends >= limits.requestResendsMax) throw error;
      }
    }
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
    const now = performance.now();
    if (now - this.lastSweepMs > this.idleMs / limits.connectionSweepsPerTimeout) this.sweep(now);
    const key = formatAddress(address);
    const slot = this.touch(key);
    this.prune(slot, now);
    const best = leastBusy(slot.connections);
    const perAddressMax = this.options.connectionsPerAddress ?? limits.connectionsPerAddressMax;
    const wantAnother = !best || (best.inFlight > 0 && slot.connections.length < perAddressMax);
    if (!wantAnother && best) return best;
    if (slot.opening) return best ?? slot.opening;
    slot.opening = this.openWithRetry(address);
    const opening = slot.opening;
    try {
      const connection = await opening;
      if (this.closed) {
        connection.close();
        throw new MictlanxError("unavailable", "connection pool is closed");
      }
      // The address may have been dropped meanwhile (past addressesMax): touch puts it back.
      this.touch(key).connections.push(connection);
      return connection;
    } catch (error) {
      if (best && !best.closed) return best;
      throw error;
    } finally {
      if (slot.opening === opening) slot.opening = null;
    }
  }

  private get idleMs(): number {
    return this.options.connectionIdleMs ?? limits.poolConnectionIdleMs;
  }

  /** The slot for an address, made the most recently used; past addressesMax the least recently used one goes. */
  private touch(key: string): Slot {
    let slot = this.slots.get(key);
    if (slot) {
      this.slots.delete(key);
    } else {
      slot = { connections: [], opening: null };
      const addressesMax = this.options.addressesMax ?? limits.poolAddressesMax;
      if (this.slots.size >= addressesMax) this.dropLeastRecent();
    }
    this.slots.set(key, slot);
    return slot;
  }

  /** Close and forget the least recently used address, preferring one with no call running. */
  private dropLeastRecent(): void {
    let victim: string | undefined;
    for (const [key, slot] of this.slots) {
      victim ??= key;
      if (slot.opening === null && slot.connections.every((connection) => connection.inFlight === 0)) {
        victim = key;
        break;
      }
    }
    assert(victim !== undefined, "a full pool has an address to drop");
    for (const connection of this.slots.get(victim)?.connections ?? []) connection.close();
    this.slots.delete(victim);
  }

  /** Forget closed connections, and close those unused for connectionIdleMs (before the server would). */
  private prune(slot: Slot, now: number): void {
    slot.connections = slot.connections.filter((connection) => {
      if (connection.closed) return false;
      if (connection.idleMs(now) <= this.idleMs) return true;
      connection.close();
      return false;
    });
  }

  /** Prune every address now and then, and forget those left with no connection. */
  private sweep(now: number): void {
    this.lastSweepMs = now;
    for (const [key, slot] of this.slots) {
      this.prune(slot, now);
      if (slot.connections.length === 0 && slot.opening === null) this.slots.delete(key);
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
          ...(this.options.identity === undefined ? {} : { identity: this.options.identity }),
          ...(this.options.expectRole === undefined ? {} : { expectRole: this.options.expectRole }),
          ...(this.options.security === undefined ? {} : { security: this.options.security }),
          ...(this.options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: this.options.connectTimeoutMs }),
        });
      } catch (error) {
        lastError = error;
        // Not allowed, or the wrong kind of server: trying again changes nothing.
        if (error instanceof MictlanxError && (error.code === "forbidden" || error.code === "usage")) break;
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
