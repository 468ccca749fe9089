// Many large balls streamed at once through the client library: `streams` puts of `ballBytes`
// each from a generator that never holds a whole ball, then as many streaming gets, each
// checked piece by piece against the same pattern (bench/stream-pattern.ts), never assembled.
// What it measures is the router's and the peers' peak resident memory while that runs, and
// the MB/s of each half. Used by bench/run.ts against its VSS; the balls are deleted after.
import { Client, NotFoundError } from "../src/client/index.ts";
import type { LocalVss } from "../src/local/vss.ts";
import { PatternCheck, patternPieces } from "./stream-pattern.ts";
import { peakRssBytes, resetPeakRss } from "./proc-memory.ts";

const MiB = 1024 * 1024;

export interface StreamsOptions {
  streams: number;
  ballBytes: number;
  rf: number;
  /** The processes whose peak resident memory is wanted, by name (router, peer-0, …). */
  watch: Record<string, number>;
  log: (line: string) => void;
  /** Bytes the generator hands the client at a time (default 1 MiB). */
  pieceBytes?: number;
  /** How often a progress line is logged (default 15 s). */
  progressIntervalMs?: number;
}

export interface StreamsResult {
  putMBs: number;
  getMBs: number;
  /** Each watched process's peak resident bytes: over the streams alone, or (see peakSince) its whole life. */
  peakBytes: Record<string, number>;
  /**
   * "streams" when every watched VmHWM could be reset just before the streams began (the peak
   * is theirs alone); "process start" when not, and the peak then includes all that ran before.
   */
  peakSince: "streams" | "process start";
  /** This bench process's own peak over the streams, to show the client never held a ball. */
  clientPeakBytes: number;
  errors: string[];
}

export const streamsBucket = "bench-streams";
const patternBlockBytes = 64 * 1024;

export async function concurrentStreams(vss: LocalVss, options: StreamsOptions): Promise<StreamsResult> {
  const router = vss.routers[0];
  if (!router) throw new Error("concurrentStreams needs a VSS with a router");
  const security = vss.security;
  // Cache off: the gets must come from the peers, and the bench process must not keep chunks.
  const client = new Client({
    routers: router.address,
    rf: options.rf,
    cacheBytes: 0,
    ...(security.insecure ? {} : { accessKey: security.credentials.accessKey, secretKey: security.credentials.secretKey, ca: security.credentials.ca }),
  });
  const base = crypto.getRandomValues(new Uint8Array(patternBlockBytes));
  const keys = Array.from({ length: options.streams }, (_, index) => `ball-${index}`);
  const pieceBytes = options.pieceBytes ?? MiB;
  const totalBytes = options.streams * options.ballBytes;
  const errors: string[] = [];
  // VmHWM is a peak over a process's whole life, which here would include the 64 MiB phase
  // before. Resetting it (clear_refs) makes the peak the streams' own, exactly, where sampling
  // VmRSS every 100 ms could miss a short spike.
  const pids = { ...options.watch, client: process.pid };
  const reset = Object.values(pids).every((pid) => resetPeakRss(pid));
  try {
    const putSeconds = await timed(() =>
      allReporting(keys, errors, "put", options, (key, index, progress) =>
        client.put(streamsBucket, key, patternPieces(base, index, options.ballBytes, pieceBytes), { onProgress: progress }).then((result) => {
          if (result.size !== options.ballBytes) throw new Error(`${key}: stored ${result.size} bytes, sent ${options.ballBytes}`);
        }),
      ),
    );
    const getSeconds = await timed(() =>
      allReporting(keys, errors, "get", options, async (key, index, progress) => {
        const { stream } = await client.getStream(streamsBucket, key);
        const check = new PatternCheck(base, index);
        for await (const piece of stream) {
          check.update(piece);
          progress(check.checkedBytes);
        }
        check.finish(options.ballBytes);
      }),
    );
    const peakBytes = Object.fromEntries(Object.entries(options.watch).map(([name, pid]) => [name, peakRssBytes(pid)]));
    return {
      putMBs: totalBytes / putSeconds / 1e6,
      getMBs: totalBytes / getSeconds / 1e6,
      peakBytes,
      peakSince: reset ? "streams" : "process start",
      clientPeakBytes: peakRssBytes(process.pid),
      errors,
    };
  } finally {
    await deleteAll(client, keys, errors);
    client.close();
  }
}

async function timed(run: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await run();
  return (performance.now() - started) / 1000;
}

/**
 * Run `op` for every key at once; a failure is recorded, not thrown, so the other streams run
 * to the end and the figures say how many failed. Logs the bytes done every progress interval.
 */
async function allReporting(
  keys: string[],
  errors: string[],
  what: string,
  options: StreamsOptions,
  op: (key: string, index: number, progress: (doneBytes: number) => void) => Promise<void>,
): Promise<void> {
  const done = keys.map(() => 0);
  const totalMiB = (keys.length * options.ballBytes) / MiB;
  const timer = setInterval(() => {
    const doneMiB = done.reduce((sum, bytes) => sum + bytes, 0) / MiB;
    options.log(`  streams ${what}: ${doneMiB.toFixed(0)} of ${totalMiB.toFixed(0)} MiB`);
  }, options.progressIntervalMs ?? 15_000);
  try {
    await Promise.all(
      keys.map((key, index) =>
        op(key, index, (doneBytes) => (done[index] = doneBytes)).catch((error: unknown) => {
          errors.push(`${what} ${key}: ${error instanceof Error ? error.message : String(error)}`);
        }),
      ),
    );
  } finally {
    clearInterval(timer);
  }
}

/** Delete the balls (32 GiB of replicas at full size); one that was never stored is not an error. */
async function deleteAll(client: Client, keys: string[], errors: string[]): Promise<void> {
  for (const key of keys) {
    try {
      await client.delete(streamsBucket, key);
    } catch (error) {
      if (!(error instanceof NotFoundError)) errors.push(`delete ${key}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
