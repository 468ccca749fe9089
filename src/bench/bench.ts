// `mictlanx bench`, after `weed benchmark`: write balls of one size through the routers, then
// read them back, at a fixed concurrency; report throughput and latency percentiles. Every
// read is compared with what was written — a wrong byte or any error is counted and shown.
import { Client } from "../client/client.ts";
import { toMictlanxError } from "../lib/errors.ts";
import { summarize, type PhaseResult } from "./stats.ts";

export type BenchOp = "put" | "get" | "mixed" | "all";

export interface BenchOptions {
  routers: string;
  size: number;
  count?: number;
  durationMs?: number;
  concurrency: number;
  rf: number;
  op: BenchOp;
  bucket?: string;
  chunkSize?: number;
  onPhase?: (result: PhaseResult) => void;
}

/** Ball i's bytes: one random base with i stamped in front, so every ball differs. */
function payloadFor(base: Uint8Array, index: number): Uint8Array {
  const data = new Uint8Array(base);
  if (data.byteLength >= 8) new DataView(data.buffer).setFloat64(0, index);
  return data;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
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
  const worker = async () => {
    while (next < spec.count && performance.now() < deadline) {
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
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  return summarize({ op: spec.name, size: options.size, concurrency: options.concurrency, rf: options.rf }, latencies, seconds, errors);
}

export async function runBench(options: BenchOptions): Promise<PhaseResult[]> {
  const bucket = options.bucket ?? `bench-${Date.now().toString(36)}`;
  // No client cache: every get must come from the store, not from what this client just put.
  const client = new Client({ routers: options.routers, concurrency: 4, cacheBytes: 0, ...(options.chunkSize ? { chunkSize: options.chunkSize } : {}) });
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
  const put = async (index: number) => {
    await client.put(bucket, key(index), payloadFor(fill, index), { rf: options.rf });
    written = Math.max(written, index + 1);
  };
  // Reads stay within balls whose put finished before the read phase began.
  let readable = 0;
  const get = async (index: number) => {
    const which = index % readable;
    const data = await client.get(bucket, key(which));
    if (!sameBytes(data, payloadFor(fill, which))) throw new Error(`ball ${key(which)} read back different bytes`);
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
    client.close();
  }
}
