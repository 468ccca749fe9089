// The peer's metrics: bytes, chunks, shards by state, requests and latency by op, fsync batching,
// and the background scrub's progress.
import { MetricsRegistry, requestMetrics } from "../../lib/metrics.ts";
import type { ScrubProgress, StoreStats } from "../../storage/index.ts";

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
  scrubMetrics(registry, () => stats().scrub);
  const batch = registry.histogram("mictlanx_peer_fsync_batch_writes", "Writes covered by each group-commit fdatasync.", [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096]);
  return { registry, requestDone, fsyncDone: (writes: number) => batch.observe(writes) };
}

function scrubMetrics(registry: MetricsRegistry, scrub: () => ScrubProgress): void {
  registry.counterFrom("mictlanx_peer_scrub_bytes_total", "Bytes the scrub read back from shard files to verify them.", () => scrub().bytesScanned);
  registry.counterFrom("mictlanx_peer_scrub_chunks_total", "Chunks the scrub read back and verified.", () => scrub().chunksScanned);
  registry.counterFrom("mictlanx_peer_scrub_corrupt_total", "Corrupt chunks the scrub found (reported to the SPM; once a pass while still bad).", () => scrub().corruptFound);
  registry.counterFrom("mictlanx_peer_scrub_passes_total", "Full scrub passes over every shard.", () => scrub().passes);
  registry.gauge("mictlanx_peer_scrub_pass_progress_ratio", "How far the scrub pass under way is (0..1; 1 between passes).", () => scrub().passProgress);
  registry.gauge("mictlanx_peer_scrub_last_pass_timestamp_seconds", "When the last full scrub pass ended (Unix seconds; absent before the first).", () => {
    const last = scrub().lastPassMs;
    return last === undefined ? [] : last / 1000;
  });
  registry.gauge("mictlanx_peer_scrub_rate_bytes_per_second", "The scrub's byte-rate limit; 0 when it is off.", () => scrub().ratePerSec);
}
