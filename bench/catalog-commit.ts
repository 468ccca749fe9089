// The SPM's catalog work per small put, alone: an intent (reserve) then a commit, written in
// group transactions of `--batch` puts as the SPM's write batcher does, with a WAL fdatasync per
// transaction. Prints puts/s and microseconds of CPU per put, so catalog changes can be
// measured without the rest of the VSS. --savepoints wraps each write in its own savepoint (the
// batcher's fallback after a failed write) instead of the all-or-nothing group it runs first.
//   bun bench/catalog-commit.ts [--count 20000] [--batch 16] [--savepoints]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Catalog } from "../src/catalog/index.ts";

const { values } = parseArgs({ options: { count: { type: "string", default: "20000" }, batch: { type: "string", default: "16" }, savepoints: { type: "boolean", default: false } } });
const count = Number(values.count);
const batch = Number(values.batch);
const dir = mkdtempSync(join(tmpdir(), "mictlanx-catalog-commit-"));
const catalog = Catalog.open(join(dir, "catalog.sqlite"), { deferredSync: true });
const nowMs = Date.now();
for (const id of ["peer-a", "peer-b", "peer-c"]) {
  catalog.upsertPeer({ id, address: `127.0.0.1:${id.length}`, capacityBytes: 1 << 30, usedBytes: 0, freeBytes: 1 << 30, chunks: 0, state: "up", lastHeartbeatMs: nowMs, registeredMs: nowMs, draining: false });
}
const checksum = "ab".repeat(32);
/** Milliseconds each group transaction held the event loop (the WAL fsync is not in it). */
const groupMs: number[] = [];
/** One group transaction, as the SPM's write batcher runs it. */
const group = (writes: Array<() => unknown>) => {
  const started = performance.now();
  if (values.savepoints) catalog.batch(() => writes.forEach((write) => catalog.batch(write)));
  else catalog.batchAllOrNothing(() => writes.forEach((write) => write()));
  groupMs.push(performance.now() - started);
};
const cpu0 = process.cpuUsage();
const started = performance.now();
for (let done = 0; done < count; done += batch) {
  const ids = Array.from({ length: Math.min(batch, count - done) }, () => Bun.randomUUIDv7());
  const peers = ["peer-a", "peer-b"];
  group(ids.map((objectId, i) => () => catalog.addIntent({ objectId, bucket: "bench", key: `k${done + i}`, createdMs: nowMs, expiresMs: nowMs + 60_000, placements: [{ index: 0, peers }] })));
  await catalog.syncWal();
  group(
    ids.map((objectId, i) => () => {
      const key = `k${done + i}`;
      const ball = { bucket: "bench", key, ballId: key, objectId, size: 4096, checksum, contentType: "application/octet-stream", tags: {}, rf: 2, createdMs: nowMs, chunkSize: 4096, numChunks: 1 };
      return catalog.commitBall(ball, [{ index: 0, size: 4096, checksum: "cd".repeat(8), peers }]);
    }),
  );
  await catalog.syncWal();
}
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpu0);
console.log(`${count} puts in groups of ${batch}${values.savepoints ? " (savepoint per write)" : ""}: ${(count / seconds).toFixed(0)} puts/s, ${((cpu.user + cpu.system) / count).toFixed(1)} µs CPU per put (user ${(cpu.user / count).toFixed(1)}, system ${(cpu.system / count).toFixed(1)})`);
groupMs.sort((a, b) => a - b);
const at = (q: number) => (groupMs[Math.min(groupMs.length - 1, Math.floor(q * groupMs.length))] ?? 0).toFixed(2);
console.log(`group transactions on the event loop: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms`);
catalog.close();
rmSync(dir, { recursive: true, force: true });
