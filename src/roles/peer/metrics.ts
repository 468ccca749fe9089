// The peer's metrics: bytes, chunks, shards by state, requests and latency by op, fsync batching.
import { MetricsRegistry, requestMetrics } from "../../lib/metrics.ts";
import type { StoreStats } from "../../storage/index.ts";

export function peerMetrics(stats: () => StoreStats) {
  const registry = new MetricsRegistry();
  const requestDone = requestMetrics(registry, "peer");
  registry.gauge("mictlanx_peer_bytes", "Bytes by kind: used (shard files on disk), live (chunks that can be read), free, capacity.", () => {
    const now = stats();
    return [
      [{ kind: "used" }, now.usedBytes],
      [{ kind: "live" }, now.liveBytes],
      [{ kind: "free" }, now.freeBytes],
      [{ kind: "capacity" }, now.capacityBytes],
    ];
  });
  registry.gauge("mictlanx_peer_chunks", "Chunks stored.", () => stats().chunks);
  registry.gauge("mictlanx_peer_shards", "Shard files by state.", () => {
    const shards = stats().shards;
    return (["active", "read_only"] as const).map((state) => [{ state }, shards.filter((shard) => shard.state === state).length]);
  });
  registry.counterFrom("mictlanx_peer_fsyncs_total", "fdatasync calls that acknowledged writes.", () => stats().fsyncs);
  registry.counterFrom("mictlanx_peer_fsync_batch_writes_total", "Writes covered by those fsyncs; divided by fsyncs it is the mean group-commit batch.", () => stats().fsyncBatchWritesTotal);
  const batch = registry.histogram("mictlanx_peer_fsync_batch_writes", "Writes covered by each group-commit fdatasync.", [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096]);
  return { registry, requestDone, fsyncDone: (writes: number) => batch.observe(writes) };
}
