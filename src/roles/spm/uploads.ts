// Uploads: a put's life at the SPM. `reserve` checks rf and --if-absent early, makes the new
// version's object id and records the upload's intent (with the placements handed out) durably,
// before any chunk goes to a peer; `place` hands out more placements; `commit` makes the ball
// visible in one catalog write, group-committed with its neighbours; `abandon` ends an upload
// its client gave up, its chunks garbage at once. A retried put (same request id) gets its
// first try's reservation back, unless that was abandoned.
import { committedBall, type CatalogCalls, type CatalogStore, type CommitItem, type IntentOutcome, type PutIntent, type RetireTiming } from "../../catalog/index.ts";
import type { spmOps } from "../../protocol/spm.ts";
import type { ParsedArgsOf, ResultOf } from "../../protocol/envelope.ts";
import { defaultBallId, type ChunkRecordWire } from "../../protocol/ball.ts";
import type { Clock } from "../../lib/clock.ts";
import { BadRequestError, ConflictError, MictlanxError, UnavailableError, toMictlanxError } from "../../lib/errors.ts";
import { assert } from "../../lib/assert.ts";
import { limits, vssLimits } from "../../lib/limits.ts";
import { Lru } from "../../lib/lru.ts";
import { choosePeers } from "./placement.ts";
import type { Registry } from "./registry.ts";
import type { WriteBatcher } from "./write-batcher.ts";
import { takeGeneration, type Manifests, type PendingManifest } from "./manifests.ts";

export type CommitArgs = ParsedArgsOf<typeof spmOps, "ball.commit">;
/** A reservation as `reserve` takes it (`ball.begin` reserves with a count of 0). */
type ReserveInput = Omit<ReserveArgs, "count"> & { count: number };
/** A new upload planned by `reserve`: its intent, to be written, and the answer once it is. */
type PlannedUpload = { intent: PutIntent; reserved: Reservation };
/** What a commit answers: its version, and the object id it replaced when it overwrote one. */
export type CommitAnswer = { version: number; replacedObjectId?: string };
export type Reservation = ResultOf<typeof spmOps, "ball.reserve">;
export type ReserveArgs = ParsedArgsOf<typeof spmOps, "ball.reserve">;
export type PlaceArgs = ParsedArgsOf<typeof spmOps, "ball.place">;

export interface UploadsOptions {
  catalog: CatalogStore;
  registry: Registry;
  writes: WriteBatcher;
  clock: Clock;
  /** The anchored wall clock deadlines in the catalog are written and read with. */
  deadlineNowMs: () => number;
  /** When a version replaced now is retired, and its readers' grace. */
  retireNow: () => RetireTiming;
  intentTtlMs: number;
  random: () => number;
  /** Where a commit's manifest (and an overwrite's tombstone) goes before the commit is answered. */
  manifests: Manifests;
}

export class Uploads {
  /** Reservations by request id, so a retried put gets its first try's object id back. */
  private readonly reservations = new Lru<string, { bucket: string; key: string; reserved: Reservation; expiresMonoMs: number }>(vssLimits.reservationsKept);

  constructor(private readonly o: UploadsOptions) {}

  async reserve(args: ReserveInput): Promise<Reservation> {
    const [answer] = await this.reserveMany([args]);
    assert(answer !== undefined, "a reservation lost its answer");
    if (answer instanceof Error) throw answer;
    return answer;
  }

  /**
   * The reservations of one batch (a router's `ball.reserveMany`): each checked and placed, then
   * every new intent in one catalog write (`addIntents`; on PostgreSQL one statement for the
   * batch), each answered in its place. A put's request id is not looked up first: an intent
   * whose request id the catalog knows is left out by the write itself, and only then is the
   * retry answered from the catalog (the SPM restarted since its first try, say).
   */
  async reserveMany(args: readonly ReserveInput[]): Promise<Array<Reservation | MictlanxError>> {
    const nowMonoMs = this.o.clock.monoMs();
    const planned = await Promise.all(
      args.map(async (one) => {
        try {
          const remembered = await this.remembered(one, nowMonoMs);
          if (remembered) return remembered;
        } catch (error) {
          return toMictlanxError(error);
        }
        return this.plan(one).catch((error: unknown) => this.orRetry(one, error));
      }),
    );
    const fresh = planned.filter((one): one is PlannedUpload => "intent" in one);
    const outcomes = fresh.length === 0 ? [] : await this.addIntents(fresh.map((one) => one.intent));
    const outcomeOf = new Map(fresh.map((one, k) => [one, outcomes[k]!]));
    return Promise.all(
      planned.map(async (one) => {
        if (!("intent" in one)) return one;
        const outcome = outcomeOf.get(one)!;
        if (outcome instanceof MictlanxError) return outcome;
        const { bucket, key, requestId } = one.intent;
        if (outcome === "request_known") return this.knownRetry(requestId!, bucket, key);
        // Remembered for less than the intent lives, so a retry never gets an object id already expired.
        if (requestId !== undefined) this.reservations.set(requestId, { bucket, key, reserved: one.reserved, expiresMonoMs: nowMonoMs + this.o.intentTtlMs / 2 });
        return one.reserved;
      }),
    );
  }

  /** A retry of a put this SPM reserved (same request id, same ball): its first reservation. */
  private async remembered({ bucket, key, requestId, ifAbsent }: ReserveInput, nowMonoMs: number): Promise<Reservation | undefined> {
    const earlier = requestId === undefined ? undefined : this.reservations.get(requestId);
    if (!earlier || earlier.bucket !== bucket || earlier.key !== key || earlier.expiresMonoMs <= nowMonoMs) return undefined;
    // If its first try committed, the ball there is our own: not an --if-absent conflict.
    const current = ifAbsent ? await this.o.catalog.getBallMeta(bucket, key) : undefined;
    if (current && current.objectId !== earlier.reserved.objectId) throw new ConflictError(`${bucket}/${key} already exists (--if-absent)`);
    return earlier.reserved;
  }

  /** A new upload's checks (rf, --if-absent), object id and placements; its intent, not yet written. */
  private async plan({ bucket, key, rf, count, requestId, chunkBytes, ifAbsent }: ReserveInput): Promise<PlannedUpload> {
    checkEnoughPeers(this.o.registry, rf);
    if (ifAbsent && (await this.o.catalog.getBallMeta(bucket, key))) throw new ConflictError(`${bucket}/${key} already exists (--if-absent)`);
    // Time-ordered (UUIDv7): the catalog's and the peers' indexes keyed by object id then grow
    // at their right edge, so a group commit dirties a few pages instead of one per put.
    const objectId = Bun.randomUUIDv7();
    const placements = this.choose(0, count, rf, new Set());
    const createdMs = this.o.deadlineNowMs();
    const expiresMs = createdMs + this.o.intentTtlMs;
    const intent: PutIntent = {
      objectId, bucket, key, createdMs, expiresMs, placements: placements.map(intentPlacement),
      ...(requestId === undefined ? {} : { requestId }),
      ...(chunkBytes === undefined ? {} : { chunkBytes }),
    };
    return { intent, reserved: { objectId, placements } };
  }

  /**
   * The intents in one write, answered once its transaction committed, not after its flush: one
   * fsync less on every put's path. Losing them with the machine is safe: a commit needs its
   * intent, so the upload's commit is refused and its put fails unacknowledged (a retry reserves
   * afresh), and the chunks it wrote are orphans that reconciliation deletes
   * (docs/reliability.md). A killed SPM loses nothing (the transaction is in the OS's cache), and
   * every later group's flush covers it, so a commit is never durable without its intent. A
   * write that fails fails each intent in it.
   */
  private async addIntents(intents: PutIntent[]): Promise<IntentOutcome[]> {
    try {
      return await this.o.writes.submitApplied((tx) => tx.addIntents(intents));
    } catch (error) {
      const failure = toMictlanxError(error);
      return intents.map(() => failure);
    }
  }

  /** A reservation whose checks failed may be a retry of a put the catalog knows: that answers it. */
  private async orRetry({ requestId, bucket, key }: ReserveInput, error: unknown): Promise<Reservation | MictlanxError> {
    const failure = toMictlanxError(error);
    if (requestId === undefined) return failure;
    try {
      return (await this.retryFromCatalog(requestId, bucket, key)) ?? failure;
    } catch (retryError) {
      return toMictlanxError(retryError);
    }
  }

  /** An intent left out because the catalog knows its request id: the retry's answer, from the catalog. */
  private async knownRetry(requestId: string, bucket: string, key: string): Promise<Reservation | MictlanxError> {
    try {
      const known = await this.retryFromCatalog(requestId, bucket, key);
      return known ?? new UnavailableError(`request id ${requestId} was known to the catalog a moment ago and is gone now (its upload expired or was given up); retry the put`);
    } catch (error) {
      return toMictlanxError(error);
    }
  }

  /** A put retried with a request id the catalog knows: its upload under way, or its commit. */
  private async retryFromCatalog(requestId: string, bucket: string, key: string): Promise<Reservation | undefined> {
    const found = await this.o.catalog.findRequest(requestId);
    if (found === undefined) return undefined;
    if ("committed" in found) return { objectId: found.committed.objectId, placements: [], committed: { version: found.committed.version } };
    const intent = found.uploading;
    if (intent.bucket !== bucket || intent.key !== key) throw new ConflictError(`request id ${requestId} was used for ${intent.bucket}/${intent.key}; use a new one for ${bucket}/${key}`);
    const placements = intent.placements.map((placement) => ({
      index: placement.index,
      peers: placement.peers.flatMap((id) => {
        const peer = this.o.registry.get(id);
        return peer ? [{ id, address: peer.address }] : [];
      }),
    }));
    return { objectId: intent.objectId, placements };
  }

  /** More placements for an upload; like any progress, they extend its intent. */
  async place({ objectId, fromIndex, count, rf, exclude }: PlaceArgs): Promise<{ placements: Reservation["placements"]; intentTtlMs: number }> {
    const placements = this.choose(fromIndex, count, rf, new Set(exclude ?? []));
    const expiresMs = this.o.deadlineNowMs() + this.o.intentTtlMs;
    await this.o.writes.submit((tx) => tx.addIntentPlacements(objectId, placements.map(intentPlacement), expiresMs));
    return { placements, intentTtlMs: this.o.intentTtlMs };
  }

  /** A page of the upload's chunk records ahead of its commit; progress, so the upload lives on. */
  async stage(objectId: string, chunks: ChunkRecordWire[]): Promise<{ staged: number }> {
    const expiresMs = this.o.deadlineNowMs() + this.o.intentTtlMs;
    return { staged: await this.o.writes.submit((tx) => tx.stageChunks(objectId, chunks, expiresMs)) };
  }

  /** The upload is making progress (a router is writing its chunks): it lives another intentTtlMs. */
  async touch(objectId: string): Promise<{ intentTtlMs: number }> {
    const expiresMs = this.o.deadlineNowMs() + this.o.intentTtlMs;
    await this.o.writes.submit((tx) => tx.touchIntent(objectId, expiresMs));
    return { intentTtlMs: this.o.intentTtlMs };
  }

  /**
   * Its client gave the upload up: the intent ends now, its placements become garbage due at
   * once, and its reservation is forgotten (a retry of the same put begins a new upload rather
   * than writing to one being deleted). Idempotent; ConflictError when it had committed.
   */
  async abandon(objectId: string): Promise<{ replicas: number }> {
    const given = await this.o.writes.submit((tx) => tx.abandonIntent(objectId, this.o.deadlineNowMs()));
    if (given.requestId !== undefined) this.reservations.delete(given.requestId);
    return { replicas: given.replicas };
  }

  /** After a restart: every upload under way gets a whole lifetime again (the SPM was away, not they). */
  async renewAll(): Promise<void> {
    const expiresMs = this.o.deadlineNowMs() + this.o.intentTtlMs;
    await this.o.writes.submit((tx) => tx.extendAllIntents(expiresMs));
  }

  /**
   * Make a ball visible: one catalog write, group-committed with its neighbours. The catalog
   * checks the whole description (chunks 0..n-1 in order, each on rf distinct peers the SPM
   * placed it on, sizes that fit and add up) inside the same transaction.
   */
  async commit(args: CommitArgs): Promise<CommitAnswer> {
    const [answer] = await this.commitMany([args]);
    assert(answer !== undefined, "a commit lost its answer");
    if (answer instanceof Error) throw answer;
    return answer;
  }

  /**
   * The commits of one batch (a router's `ball.commitMany`) as one catalog write: the catalog
   * takes them together (`commitBalls`; on PostgreSQL the plain new uploads in two statements
   * for the whole batch), and one take of generations serves their manifests. Each answer in
   * its place. A write of the whole batch fails as a whole when one commit in it fails (a group
   * has no savepoint per commit); nothing of it is kept then, and each commit goes again as a
   * write of its own, which answers it alone.
   */
  async commitMany(args: readonly CommitArgs[]): Promise<Array<CommitAnswer | MictlanxError>> {
    if (args.length === 0) return [];
    const items = args.map((one) => this.commitItem(one));
    const together = await this.commitWrite(items).catch((error: unknown) => toMictlanxError(error));
    if (!(together instanceof MictlanxError)) return together;
    if (items.length === 1) return [together];
    return Promise.all(items.map(async (item) => (await this.commitWrite([item]).catch((error: unknown) => [toMictlanxError(error)]))[0]!));
  }

  /** A commit as the catalog takes it: the ball with its declaration, and the checks a put's commit asks for. */
  private commitItem({ objectId, chunks, ifAbsent, expectedObjectId, stagedChunks, ...declaration }: CommitArgs): CommitItem {
    const ball = {
      bucket: declaration.bucket,
      key: declaration.key,
      ballId: declaration.ballId ?? defaultBallId(declaration.key),
      objectId,
      size: declaration.size,
      checksum: declaration.checksum,
      contentType: declaration.contentType,
      tags: declaration.tags,
      rf: declaration.rf,
      createdMs: this.o.clock.wallMs(),
      chunkSize: declaration.chunkSize,
      numChunks: (stagedChunks ?? 0) + chunks.length,
    };
    const options = {
      ifAbsent: ifAbsent ?? false,
      ...(expectedObjectId === undefined ? {} : { expectedObjectId }),
      retire: this.o.retireNow(),
      requirePlacements: true,
      replicasMin: ball.rf,
      ...(stagedChunks === undefined ? {} : { stagedChunks }),
    };
    return { ball, chunks, options };
  }

  /**
   * One catalog write of `items`, answered once durable with their manifests delivered. The
   * new versions' manifests go to chunk 0's peers while the catalog's flush runs (the two
   * durable writes overlap), and a put is acknowledged once both are done; an overwrite's
   * tombstone only after that, so a tombstone on disk always has the version that replaced it
   * beside it somewhere (docs/recovery.md).
   */
  private async commitWrite(items: readonly CommitItem[]): Promise<Array<CommitAnswer | MictlanxError>> {
    let sending: Promise<PromiseSettledResult<void>[]> | undefined;
    const { manifests } = this.o;
    const write = async (tx: CatalogCalls) => {
      // Generations in item order, an overwrite's tombstone before its new version: two per
      // commit, taken beside the commit (on PostgreSQL the take travels with its first statement);
      // those a refused or plain commit leaves unused are only numbers skipped.
      const [results, taken] = await Promise.all([tx.commitBalls([...items]), takeGeneration(tx, this.o.clock.wallMs(), 2 * items.length)]);
      let generation = taken;
      const done: Array<{ answer: CommitAnswer; live: PendingManifest; replaced: PendingManifest[] } | MictlanxError> = [];
      for (const [n, result] of results.entries()) {
        if (result instanceof MictlanxError) {
          done.push(result);
          continue;
        }
        const { ball, chunks } = items[n]!;
        const { replacedObjectId } = result;
        const replaced = replacedObjectId ? [await manifests.overwritten(tx, ball.bucket, ball.key, replacedObjectId, generation++)] : [];
        // What was just written, so the manifest needs no read of it; chunk 0's holders too, unless
        // chunk 0 was staged earlier (a multipart upload's) and is not among these chunks.
        const first = chunks[0]?.index === 0 ? chunks[0] : undefined;
        const written = { ball: committedBall(ball, result.version), ...(first ? { holders: first.peers } : {}) };
        const live = await manifests.live(tx, ball.bucket, ball.key, written, generation++);
        done.push({ answer: { version: result.version, ...(replacedObjectId ? { replacedObjectId } : {}) }, live, replaced });
      }
      return done;
    };
    const done = await this.o.writes.submit(write, (applied) => {
      sending = Promise.allSettled(applied.map((one) => (one instanceof MictlanxError ? Promise.resolve() : manifests.deliver([one.live]))));
    });
    assert(sending !== undefined, "a commit was durable before it was applied");
    const delivered = await sending;
    return Promise.all(
      done.map(async (one, n) => {
        if (one instanceof MictlanxError) return one;
        const live = delivered[n]!;
        if (live.status === "rejected") return toMictlanxError(live.reason);
        try {
          await manifests.deliver(one.replaced);
        } catch (error) {
          return toMictlanxError(error);
        }
        return one.answer;
      }),
    );
  }

  /** rf distinct up peers for each of `count` chunks from `fromIndex`. */
  private choose(fromIndex: number, count: number, rf: number, exclude: Set<string>): Reservation["placements"] {
    const candidates = this.o.registry.candidates();
    const placements = Array.from({ length: count }, (_, offset) => ({
      index: fromIndex + offset,
      peers: choosePeers(candidates, rf, exclude, this.o.random).map((peer) => ({ id: peer.id, address: peer.address })),
    }));
    this.o.registry.notePlacements(placements.flatMap((placement) => placement.peers.map((peer) => peer.id)));
    return placements;
  }
}

/**
 * rf distinct peers must be up to take the chunks. Fewer than rf registered at all can only be
 * fixed by a person (bad_request, not retried); fewer up right now (a peer restarting, the SPM
 * just restarted and waiting for heartbeats) passes: insufficient_peers, which clients retry.
 */
function checkEnoughPeers(registry: Registry, rf: number): void {
  const available = registry.candidates().length;
  if (rf <= available) return;
  const registered = registry.all().filter((peer) => !peer.draining).length;
  if (rf > registered) {
    throw new BadRequestError(`replication factor ${rf} needs ${rf} peers, but this VSS has ${registered} that take data; lower --rf or start more peers`);
  }
  throw new MictlanxError("insufficient_peers", `replication factor ${rf} needs ${rf} peers that are up, but ${available} of ${registered} are right now; retry shortly, or lower --rf`);
}

function intentPlacement(placement: { index: number; peers: Array<{ id: string }> }) {
  return { index: placement.index, peers: placement.peers.map((peer) => peer.id) };
}
