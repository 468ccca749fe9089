// `mictlanx bench`, after `weed benchmark`: write balls of one size through the routers, then
// read them back, at a fixed concurrency; report throughput and latency percentiles. Every
// read is compared with what was written — a wrong byte or any error is counted and shown.
import { Client, type Verify } from "../client/client.ts";
import { toMictlanxError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { summarize, type PhaseResult } from "./stats.ts";

export type BenchOp = "put" | "get" | "mixed" | "all";

export interface BenchOptions {
  routers: string;
  /** The access key and CA of a VSS with TLS (none: plain TCP). */
  credentials?: { accessKey: string; secretKey: string; ca: string };
  size: number;
  count?: number;
  durationMs?: number;
  concurrency: number;
  rf: number;
  op: BenchOp;
  /** Default: a fresh bucket `bench-<time>`, deleted with its balls at the end unless `keep`. */
  bucket?: string;
  chunkSize?: number;
  /** Keep the balls written (and their bucket); a bucket the caller named is always kept. */
  keep?: boolean;
  /** What each read checks (the Client's verify; default "full"). */
  verify?: Verify;
  onPhase?: (result: PhaseResult) => void;
  /** Called every `benchProgressIntervalMs` while a phase runs, and once as it ends. */
  onProgress?: (progress: BenchProgress) => void;
  /** What became of the balls written, once the phases are done. */
  onCleanup?: (outcome: BenchCleanup) => void;
}

/** The bench's bucket at the end: deleted with its balls (batched on the SPM), kept, or why it could not be deleted. */
export type BenchCleanup = { bucket: string; deleted: number } | { bucket: string; kept: true } | { bucket: string; error: string };

/**
 * Ball i's bytes: one random base with i stamped over its first 8 bytes, so every ball differs.
 * Stamps `data` (a copy of the base) in place: the benchmark reuses a few such buffers instead
 * of allocating a ball-sized one per operation, which on two shared cores took CPU from the
 * store being measured.
 */
export function stampPayload(data: Uint8Array, index: number): Uint8Array {
  if (data.byteLength >= 8) new DataView(data.buffer, data.byteOffset, 8).setFloat64(0, index);
  return data;
}

/** Whether `data` is exactly ball i's bytes (every byte compared, nothing allocated). */
export function isPayload(data: Uint8Array, base: Uint8Array, index: number): boolean {
  if (data.byteLength !== base.byteLength) return false;
  if (data.byteLength < 8) return sameBytes(data, base);
  return new DataView(data.buffer, data.byteOffset, 8).getFloat64(0) === index && sameBytes(data.subarray(8), base.subarray(8));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

/** A running phase as its progress line shows it. */
export interface BenchProgress {
  phase: string;
  /** Operations that succeeded so far. */
  done: number;
  errors: number;
  /** The phase's operation count, when --count set one. */
  total?: number;
  elapsedMs: number;
  /** The phase's length, when --duration set one. */
  durationMs?: number;
}

interface PhaseSpec {
  name: string;
  count: number;
  durationMs?: number;
  work: (index: number) => Promise<void>;
}

async function runPhase(spec: PhaseSpec, options: BenchOptions): Promise<PhaseResult> {
  const latencies: number[] = [];
  const errors: string[] = [];
  let next = 0;
  const started = performance.now();
  const deadline = spec.durationMs === undefined ? Number.POSITIVE_INFINITY : started + spec.durationMs;
  // Nothing has worked yet and many have failed: the store is not there; stop and say so.
  const hopeless = () => latencies.length === 0 && errors.length >= limits.benchFailuresBeforeSuccessMax;
  const worker = async () => {
    while (next < spec.count && performance.now() < deadline && !hopeless()) {
      const index = next++;
      const opStarted = performance.now();
      try {
        await spec.work(index);
        latencies.push(performance.now() - opStarted);
      } catch (error) {
        errors.push(`${spec.name} #${index}: ${toMictlanxError(error).message}`);
      }
    }
  };
  const progress = (): void =>
    options.onProgress?.({
      phase: spec.name,
      done: latencies.length,
      errors: errors.length,
      ...(spec.count === Number.MAX_SAFE_INTEGER ? {} : { total: spec.count }),
      elapsedMs: performance.now() - started,
      ...(spec.durationMs === undefined ? {} : { durationMs: spec.durationMs }),
    });
  const ticker = options.onProgress === undefined ? undefined : setInterval(progress, limits.benchProgressIntervalMs);
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    clearInterval(ticker);
  }
  progress();
  const seconds = (performance.now() - started) / 1000;
  const result = summarize({ op: spec.name, size: options.size, concurrency: options.concurrency, rf: options.rf }, latencies, seconds, errors);
  if (hopeless()) result.errorSamples.unshift(`${spec.name}: stopped after ${errors.length} failures and no success`);
  return result;
}

export async function runBench(options: BenchOptions): Promise<PhaseResult[]> {
  const bucket = options.bucket ?? `bench-${Date.now().toString(36)}`;
  // Only a bucket of its own is removed: one the caller named may hold other balls.
  const keep = options.keep === true || options.bucket !== undefined;
  // No client cache: every get must come from the store, not from what this client just put.
  const client = new Client({ routers: options.routers, concurrency: 4, cacheBytes: 0, ...(options.credentials ?? {}), ...(options.chunkSize ? { chunkSize: options.chunkSize } : {}), ...(options.verify ? { verify: options.verify } : {}) });
  const base = crypto.getRandomValues(new Uint8Array(Math.min(options.size, 65_536)));
  const fill = new Uint8Array(options.size);
  for (let at = 0; at < fill.byteLength; at += base.byteLength) fill.set(base.subarray(0, Math.min(base.byteLength, fill.byteLength - at)), at);
  // With --duration and no --count, the put phase runs for the duration; reads cover what it wrote.
  const count = options.count ?? Number.MAX_SAFE_INTEGER;
  let written = 0;
  const results: PhaseResult[] = [];
  const report = (result: PhaseResult) => {
    results.push(result);
    options.onPhase?.(result);
  };
  const key = (index: number) => `b${String(index).padStart(9, "0")}`;
  // Payload buffers for puts in flight, returned once a put is done (at most `concurrency`).
  const spare: Uint8Array[] = [];
  const put = async (index: number) => {
    const data = stampPayload(spare.pop() ?? new Uint8Array(fill), index);
    try {
      await client.put(bucket, key(index), data, { rf: options.rf });
    } finally {
      spare.push(data);
    }
    written = Math.max(written, index + 1);
  };
  // Reads stay within balls whose put finished before the read phase began.
  let readable = 0;
  const get = async (index: number) => {
    const which = index % readable;
    const data = await client.get(bucket, key(which));
    if (!isPayload(data, fill, which)) throw new Error(`ball ${key(which)} read back different bytes`);
  };
  try {
    const putPhase = await runPhase({ name: "put", count, ...(options.durationMs === undefined ? {} : { durationMs: options.durationMs }), work: put }, options);
    if (options.op === "put" || options.op === "all") report(putPhase);
    if (written === 0 || options.op === "put") return results;
    readable = written;
    const duration = options.durationMs === undefined ? {} : { durationMs: options.durationMs };
    const phaseCount = options.count ?? readable;
    if (options.op === "get" || options.op === "all") report(await runPhase({ name: "get", count: phaseCount, ...duration, work: get }, options));
    if (options.op === "mixed") {
      let extra = readable;
      const mixed = (index: number) => (index % 2 === 0 ? get(index) : put(extra++));
      report(await runPhase({ name: "mixed", count: phaseCount, ...duration, work: mixed }, options));
    }
    return results;
  } finally {
    if (written > 0) options.onCleanup?.(await cleanUp(client, bucket, keep));
    client.close();
  }
}

async function cleanUp(client: Client, bucket: string, keep: boolean): Promise<BenchCleanup> {
  if (keep) return { bucket, kept: true };
  try {
    return { bucket, deleted: (await client.deleteBucket(bucket, { force: true })).deleted };
  } catch (error) {
    return { bucket, error: toMictlanxError(error).message };
  }
}
