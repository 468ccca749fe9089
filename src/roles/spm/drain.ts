// What `status` and the TUI say about the drains under way. The maintenance loop walks each
// draining peer's chunks a page a pass (maintenance.ts, drain); here is what the walks found: the
// replicas still on the peer, those taken off it, and the chunks that cannot move yet with the
// reason, counted by chunk and by ball ("12 chunks of 3 balls are kept at rf 3 and only 2 other
// peers take data"). A walk's findings replace the last walk's when it ends, so a chunk that
// became movable stops being reported after one walk. A peer's chunks come ordered by object,
// so balls are counted without keeping their ids.
import { assert } from "../../lib/assert.ts";
import type { DrainBlockReason, DrainStatus } from "../../protocol/spm.ts";

export interface BlockTally {
  chunks: number;
  balls: number;
  /** The largest rf among the chunks counted. */
  rfMax: number;
  lastObjectId: string | undefined;
}

interface DrainState {
  /** Where the walk under way is (undefined: at its start). */
  cursor: string | undefined;
  /** Replicas on the peer: counted at each walk's start, less those taken off since. */
  remaining: number;
  moved: number;
  walk: Map<DrainBlockReason, BlockTally>;
  /** The last finished walk's findings, once one has finished. */
  blocked: DrainStatus["blocked"] | undefined;
  /** "drained" was said for the peer (once, until it holds chunks again). */
  saidDrained: boolean;
}

/** How a finished walk's tallies read to a person (the maintenance loop knows the cluster). */
export type DescribeBlock = (reason: DrainBlockReason, tally: BlockTally) => string;

export class DrainTracker {
  private readonly drains = new Map<string, DrainState>();

  /** Forget drains of peers no longer draining (undrained, removed). */
  keepOnly(peerIds: ReadonlySet<string>): void {
    for (const id of this.drains.keys()) if (!peerIds.has(id)) this.drains.delete(id);
  }

  /** The cursor for this pass's page of the peer's chunks; a walk's start recounts what is left. */
  async cursor(peerId: string, countReplicas: () => Promise<number>): Promise<string | undefined> {
    const state = this.state(peerId);
    if (state.cursor === undefined) {
      state.remaining = await countReplicas();
      if (state.remaining > 0) state.saidDrained = false; // it holds chunks (again): say it when they are gone
    }
    return state.cursor;
  }

  /** A replica was taken off the draining peer. */
  moved(peerId: string): void {
    const state = this.state(peerId);
    state.moved += 1;
    state.remaining = Math.max(0, state.remaining - 1);
  }

  blocked(peerId: string, reason: DrainBlockReason, chunk: { objectId: string; rf: number }): void {
    const walk = this.state(peerId).walk;
    const tally = walk.get(reason) ?? { chunks: 0, balls: 0, rfMax: 0, lastObjectId: undefined };
    tally.chunks += 1;
    if (tally.lastObjectId !== chunk.objectId) tally.balls += 1;
    tally.lastObjectId = chunk.objectId;
    tally.rfMax = Math.max(tally.rfMax, chunk.rf);
    walk.set(reason, tally);
  }

  /**
   * This pass's page is done; `next` is where the walk goes on (undefined: it is finished).
   * True once per drain, when a walk ends with nothing left on the peer: time to say "drained".
   */
  pageDone(peerId: string, next: string | undefined, describe: DescribeBlock): boolean {
    const state = this.state(peerId);
    state.cursor = next;
    if (next !== undefined) return false;
    state.blocked = summary(state.walk, describe);
    state.walk = new Map();
    if (state.remaining > 0 || state.saidDrained) return false;
    state.saidDrained = true;
    return true;
  }

  status(describe: DescribeBlock): DrainStatus[] {
    return [...this.drains].map(([peerId, state]) => {
      const blocked = state.blocked ?? summary(state.walk, describe); // the first walk: what it found so far
      for (const entry of blocked) assert(entry.chunks > 0 && entry.balls > 0 && entry.balls <= entry.chunks, `drain tally of ${peerId}: ${entry.chunks} chunks, ${entry.balls} balls`);
      return { peerId, remainingChunks: state.remaining, movedChunks: state.moved, blocked };
    });
  }

  private state(peerId: string): DrainState {
    let state = this.drains.get(peerId);
    if (!state) {
      state = { cursor: undefined, remaining: 0, moved: 0, walk: new Map(), blocked: undefined, saidDrained: false };
      this.drains.set(peerId, state);
    }
    return state;
  }
}

function summary(walk: Map<DrainBlockReason, BlockTally>, describe: DescribeBlock): DrainStatus["blocked"] {
  return [...walk].map(([reason, tally]) => ({ reason, chunks: tally.chunks, balls: tally.balls, message: describe(reason, tally) }));
}
