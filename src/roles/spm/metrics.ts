// The SPM's metrics: peers by state, the catalog's size, replication health and healing.
// Everything but request counts is read from status() at scrape time.
import { MetricsRegistry, requestMetrics } from "../../lib/metrics.ts";
import type { VssStatus } from "../../protocol/spm.ts";

export function spmMetrics(status: () => VssStatus) {
  const registry = new MetricsRegistry();
  const requestDone = requestMetrics(registry, "spm");
  // One status() per scrape would be enough; each gauge reads it, which is cheap (counts are O(1)).
  const states = ["up", "suspect", "down"] as const;
  registry.gauge("mictlanx_spm_peers", "Registered peers by state.", () => states.map((state) => [{ state }, status().peers.filter((peer) => peer.state === state).length]));
  registry.gauge("mictlanx_spm_peers_draining", "Peers being drained.", () => status().peers.filter((peer) => peer.draining).length);
  registry.gauge("mictlanx_spm_balls", "Balls (current versions) in the catalog.", () => status().balls);
  registry.gauge("mictlanx_spm_buckets", "Buckets in the catalog.", () => status().buckets);
  registry.gauge("mictlanx_spm_stored_bytes", "Bytes of all balls (one copy each).", () => status().bytes);
  registry.gauge("mictlanx_spm_chunks", "Chunks of all balls.", () => status().chunks);
  registry.gauge("mictlanx_spm_under_replicated_chunks", "Chunks with fewer replicas on live peers than their rf.", () => status().underReplicated);
  registry.gauge("mictlanx_spm_garbage_replicas", "Replicas waiting to be deleted from peers.", () => status().garbage);
  registry.gauge("mictlanx_spm_pending_uploads", "Uploads begun and neither committed nor abandoned yet.", () => status().pendingUploads);
  registry.gauge("mictlanx_spm_pending_upload_bytes", "Bytes placed for uploads under way (chunk size × replicas placed).", () => status().pendingUploadBytes);
  registry.gauge("mictlanx_spm_heal_queue_chunks", "Chunks waiting for healing.", () => status().healing.queued);
  registry.gauge("mictlanx_spm_heal_in_flight", "Chunk copies running now.", () => status().healing.inFlight);
  registry.gauge("mictlanx_spm_heal_bytes_per_second", "Bytes per second copied by healing, drain and rebalance over the last second.", () => status().healing.bytesPerSec);
  registry.counterFrom("mictlanx_spm_healed_chunks_total", "Chunks copied to restore their rf.", () => status().healing.healedChunks);
  registry.counterFrom("mictlanx_spm_healed_bytes_total", "Bytes copied to restore rf.", () => status().healing.healedBytes);
  registry.counterFrom("mictlanx_spm_moved_chunks_total", "Chunks moved by drain and rebalance.", () => status().healing.movedChunks);
  registry.counterFrom("mictlanx_spm_trimmed_replicas_total", "Replicas beyond rf removed.", () => status().healing.trimmedReplicas);
  registry.counterFrom("mictlanx_spm_repaired_corrupt_total", "Corrupt replicas rewritten from a good one.", () => status().healing.repairedCorrupt);
  registry.counterFrom("mictlanx_spm_maintenance_failures_total", "Failed healing, drain, rebalance or garbage steps (retried).", () => status().healing.failures);
  const group = registry.histogram("mictlanx_spm_catalog_group_writes", "Catalog writes (reserves, commits) per group transaction and WAL fsync.", [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]);
  return { registry, requestDone, groupDone: (writes: number) => group.observe(writes) };
}
