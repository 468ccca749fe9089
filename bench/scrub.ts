// What the peer's background scrub costs (src/storage/scrub.ts), in one run:
//   bun bench/scrub.ts [MiB-of-1MiB-chunks] [MiB-of-4KiB-chunks] [seconds-per-load-case]
// 1. One unthrottled pass over each store: how fast a pass can go, and CPU-seconds per GiB.
// 2. The default rate (limits.scrubBytesPerSecDefault) for a few seconds: the CPU it takes.
// 3. 4 KiB verified gets at 16 readers with the scrub off, at the default rate, and
//    unthrottled, passes back to back: what it takes from client reads. The three cases are
//    interleaved over 3 rounds and summed, so a VM's drift hits each alike. Uses a temp dir and
//    removes it.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { limits } from "../src/lib/limits.ts";
import { ChunkStore } from "../src/storage/index.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const bigMiB = Number(process.argv[2] ?? 256);
const smallMiB = Number(process.argv[3] ?? 32);
const loadSeconds = Number(process.argv[4] ?? 4);
const unthrottled = 64 * 1024 * MiB;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "mx-bench-scrub-"));
const quiet = () => undefined;

const randomBytes = (n: number) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  return b;
};

async function build(name: string, chunkBytes: number, totalBytes: number): Promise<string> {
  const dir = path.join(root, name);
  const store = await ChunkStore.open({ dir, log: quiet });
  const data = randomBytes(chunkBytes);
  const count = Math.floor(totalBytes / chunkBytes);
  for (let i = 0; i < count; i += 64) {
    await Promise.all(Array.from({ length: Math.min(64, count - i) }, (_, k) => store.put({ bucket: "bench", ball: name, index: i + k }, data)));
  }
  await store.close();
  return dir;
}

function cpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await Bun.sleep(5);
}

async function onePass(dir: string) {
  const store = await ChunkStore.open({ dir, log: quiet });
  const cpu = cpuSeconds();
  const started = performance.now();
  store.startScrub({ bytesPerSec: unthrottled });
  await until(() => store.stats().scrub.passes >= 1, 600_000);
  const seconds = (performance.now() - started) / 1000;
  const used = cpuSeconds() - cpu;
  const { bytesScanned, chunksScanned } = store.stats().scrub;
  await store.close();
  const gib = bytesScanned / (1024 * MiB);
  return { seconds, mibPerSec: bytesScanned / MiB / seconds, cpuPerGiB: used / gib, chunksScanned };
}

async function atDefaultRate(dir: string) {
  const store = await ChunkStore.open({ dir, log: quiet });
  store.startScrub({ bytesPerSec: limits.scrubBytesPerSecDefault });
  await Bun.sleep(500); // past the first burst
  const cpu = cpuSeconds();
  const bytes = store.stats().scrub.bytesScanned;
  const started = performance.now();
  await Bun.sleep(loadSeconds * 1000);
  const seconds = (performance.now() - started) / 1000;
  const read = store.stats().scrub.bytesScanned - bytes;
  const cpuShare = (cpuSeconds() - cpu) / seconds;
  await store.close();
  return { mibPerSec: read / MiB / seconds, cpuPercent: cpuShare * 100 };
}

async function getsUnder(dir: string, count: number, scrubRate: number | undefined) {
  const store = await ChunkStore.open({ dir, log: quiet });
  if (scrubRate !== undefined) store.startScrub({ bytesPerSec: scrubRate, passIntervalMs: limits.scrubPassIntervalMsMin });
  let gets = 0;
  const latencies: number[] = [];
  const deadline = performance.now() + loadSeconds * 1000;
  let next = 0;
  const reader = async () => {
    while (performance.now() < deadline) {
      const index = next++ % count;
      const t = performance.now();
      await store.get({ bucket: "bench", ball: "small", index });
      latencies.push(performance.now() - t);
      gets += 1;
    }
  };
  await Promise.all(Array.from({ length: 16 }, reader));
  const scrubbed = store.stats().scrub.bytesScanned;
  await store.close();
  latencies.sort((a, b) => a - b);
  const p99 = latencies[Math.floor(latencies.length * 0.99)] ?? 0;
  return { getsPerSec: gets / loadSeconds, p99Ms: p99, scrubMiB: scrubbed / MiB };
}

try {
  const big = await build("big", MiB, bigMiB * MiB);
  const small = await build("small", 4 * KiB, smallMiB * MiB);
  const smallCount = Math.floor((smallMiB * MiB) / (4 * KiB));
  const rows: string[] = [];
  for (const [name, dir] of [["1 MiB chunks", big], ["4 KiB chunks", small]] as const) {
    const pass = await onePass(dir);
    rows.push(`unthrottled pass, ${name}: ${pass.chunksScanned} chunks in ${pass.seconds.toFixed(2)} s, ${pass.mibPerSec.toFixed(0)} MiB/s, ${pass.cpuPerGiB.toFixed(2)} CPU-s/GiB`);
    const paced = await atDefaultRate(dir);
    rows.push(`default rate (${limits.scrubBytesPerSecDefault / MiB} MiB/s), ${name}: read ${paced.mibPerSec.toFixed(1)} MiB/s, CPU ${paced.cpuPercent.toFixed(1)} % of a core`);
  }
  const cases = [["scrub off", undefined], ["scrub at the default rate", limits.scrubBytesPerSecDefault], ["scrub unthrottled", unthrottled]] as const;
  const sums = cases.map(() => ({ getsPerSec: 0, p99Ms: 0, scrubMiB: 0 }));
  const rounds = 3;
  for (let round = 0; round < rounds; round += 1) {
    for (const [i, [, rate]] of cases.entries()) {
      const r = await getsUnder(small, smallCount, rate);
      const sum = sums[i]!;
      sum.getsPerSec += r.getsPerSec / rounds;
      sum.p99Ms += r.p99Ms / rounds;
      sum.scrubMiB += r.scrubMiB / rounds;
    }
  }
  for (const [i, [label]] of cases.entries()) {
    const r = sums[i]!;
    rows.push(`4 KiB gets x16, ${label}: ${r.getsPerSec.toFixed(0)} gets/s, p99 ${r.p99Ms.toFixed(2)} ms (scrub read ${(r.scrubMiB / loadSeconds).toFixed(1)} MiB/s)`);
  }
  for (const row of rows) console.log(row);
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
