// What a server decides about its connections, apart from the sockets so it can be read (and
// tested) alone: how many reply bytes a request may start with, which connection makes room
// for a newcomer, and when a connection has been slow or idle for too long.
import { assert } from "../lib/assert.ts";

/** What the policy needs to know of one connection. */
export interface ConnectionView {
  node: boolean;
  inFlight: number;
  /** Frames read and not started (including one parsed and waiting for reply room). */
  backlog: number;
  /** Bytes of a frame that has begun to arrive (0 between frames). */
  partialFrameBytes: number;
  /** Reading is paused by this server (backpressure), so the client cannot be blamed for silence. */
  paused: boolean;
  /** Replies queued and not taken by the socket, plus the estimates of the requests running. */
  queuedReplyBytes: number;
  reservedReplyBytes: number;
  /** performance.now() of the last byte in, the last byte out or the last request finished. */
  lastActiveMs: number;
  /** performance.now() of the last byte in (or of reading resumed). */
  lastReadMs: number;
  /** How long its queued replies have waited with the socket taking none (0: not waiting). */
  writeBlockedMs: number;
}

/**
 * The largest ok reply each op has sent on this server: what a new request of that op is
 * expected to answer. Until an op has answered once it is expected to answer a whole frame.
 * Keys are ops of the server's table (checked before a request gets here), so it stays small.
 */
export class ReplyEstimates {
  private readonly largest = new Map<string, number>();

  /** `declared`: ops that say how big their replies are at most (OpSpec.replyBytesMax). */
  constructor(
    private readonly unknownBytes: number,
    private readonly declared: ReadonlyMap<string, number> = new Map(),
  ) {
    assert(unknownBytes > 0, "the estimate of an op never seen must be positive");
    for (const [op, bytes] of declared) assert(bytes > 0 && bytes <= unknownBytes, `${op} declares replies of ${bytes} bytes`);
  }

  of(op: string): number {
    return this.largest.get(op) ?? this.declared.get(op) ?? this.unknownBytes;
  }

  /** Learn from a reply. Only ever grows: a client cannot talk an op's estimate down. */
  note(op: string, replyBytes: number): void {
    const known = this.largest.get(op);
    if (known === undefined || replyBytes > known) this.largest.set(op, replyBytes);
  }
}

/**
 * May a request expected to answer `expectedBytes` start on a connection that holds
 * `heldBytes` (queued replies and those expected of its running requests)? Yes when its reply
 * fits beside them, and always when it holds nothing: one request at a time always makes
 * progress (replyBytesMax is at least a frame).
 */
export function replyRoom(heldBytes: number, expectedBytes: number, replyBytesMax: number): boolean {
  return heldBytes === 0 || heldBytes + expectedBytes <= replyBytesMax;
}

/** Nothing in flight, nothing waiting, no frame begun: closing it loses nothing, and the client may resend. */
export function quiet(connection: ConnectionView): boolean {
  return connection.inFlight === 0 && connection.backlog === 0 && connection.partialFrameBytes === 0 && connection.queuedReplyBytes === 0;
}

/**
 * The client connection to close for a newcomer when the server is at its cap: the least
 * recently active among the quiet ones, else the least recently active of all. Nodes never.
 */
export function pickEvictee<C extends ConnectionView>(connections: Iterable<C>): C | undefined {
  let best: C | undefined;
  let bestQuiet = false;
  for (const connection of connections) {
    if (connection.node) continue;
    const isQuiet = quiet(connection);
    const better = best === undefined || (isQuiet && !bestQuiet) || (isQuiet === bestQuiet && connection.lastActiveMs < best.lastActiveMs);
    if (better) {
      best = connection;
      bestQuiet = isQuiet;
    }
  }
  return best;
}

export type Overdue =
  | { reason: "frame_stalled"; waitedMs: number }
  | { reason: "replies_unread"; waitedMs: number }
  | { reason: "idle"; waitedMs: number };

export interface Deadlines {
  frameStallTimeoutMs: number;
  connectionIdleTimeoutMs: number;
}

/** Why a connection must be closed now, if it must. */
export function overdue(connection: ConnectionView, nowMs: number, deadlines: Deadlines): Overdue | undefined {
  const silentMs = nowMs - connection.lastReadMs;
  if (connection.partialFrameBytes > 0 && !connection.paused && silentMs > deadlines.frameStallTimeoutMs) {
    return { reason: "frame_stalled", waitedMs: silentMs };
  }
  if (connection.writeBlockedMs > deadlines.frameStallTimeoutMs) return { reason: "replies_unread", waitedMs: connection.writeBlockedMs };
  const idleMs = nowMs - connection.lastActiveMs;
  if (quiet(connection) && idleMs > deadlines.connectionIdleTimeoutMs) return { reason: "idle", waitedMs: idleMs };
  return undefined;
}
