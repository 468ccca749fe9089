// `mictlanx peer`: parse flags, run the peer role until SIGINT/SIGTERM.
import { z } from "zod";
import { parseDuration, parseSize } from "../lib/size.ts";
import { parsePort, parseSpmList } from "../lib/defaults.ts";
import { parseAddress } from "../net/address.ts";
import { UsageError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { prepareDataDir } from "../lib/data-dir.ts";
import { describeZodError } from "../protocol/envelope.ts";
import { stopOnSignals } from "./signals.ts";
import { announceRole, nodeSecurity } from "./security-flags.ts";
import { metricsPortFor } from "../net/metrics-server.ts";
import { resolveAdvertise } from "../lib/advertise.ts";

const flags = z.object({
  port: z.string().optional(),
  data: z.string().optional(),
  id: z.string().optional(),
  host: z.string(),
  advertise: z.string().optional(),
  capacity: z.string(),
  shardSize: z.string(),
  spm: z.string().optional(),
  compactionInterval: z.string(),
  metricsPort: z.string().optional(),
  metricsHost: z.string().optional(),
  scrubRate: z.string(),
  scrubInterval: z.string(),
  rebuildIndex: z.boolean().optional(),
  tlsCert: z.string().optional(),
  tlsKey: z.string().optional(),
  tlsCa: z.string().optional(),
  insecure: z.boolean().optional(),
});

export async function runPeerCommand(raw: Record<string, unknown>): Promise<void> {
  const parsed = flags.safeParse(raw);
  if (!parsed.success) throw new UsageError(describeZodError(parsed.error));
  const options = parsed.data;
  if (!options.data) throw new UsageError("peer needs --data DIR (where its shards and index live)");
  const capacityBytes = parseSize(options.capacity);
  const shardBytes = parseSize(options.shardSize);
  if (options.rebuildIndex) {
    const { ChunkStore } = await import("../storage/index.ts");
    const started = performance.now();
    const rebuilt = await ChunkStore.rebuildIndex({ dir: options.data, capacityBytes, shardBytes });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    process.stdout.write(`rebuilt the index of ${options.data}: ${rebuilt.chunks} chunks in ${rebuilt.shards} shards (${seconds} s)\n`);
    return;
  }
  if (options.port === undefined) throw new UsageError("peer needs --port P (0 picks a free port)");
  for (const address of options.spm === undefined ? [] : parseSpmList(options.spm)) parseAddress(address); // a usage error before anything starts
  const port = parsePort(options.port);
  const advertise = resolveAdvertise("peer", options.host, options.advertise, port);
  const security = nodeSecurity("peer", options, options.id);
  const dir = prepareDataDir(options.data);
  const scrubBytesPerSec = parseScrubRate(options.scrubRate);
  const scrubPassIntervalMs = parseScrubInterval(options.scrubInterval);
  const { startPeer } = await import("../roles/peer/peer.ts");
  const metricsPort = metricsPortFor(options.metricsPort, port);
  const peer = await startPeer({
    host: options.host,
    port,
    ...(advertise === undefined ? {} : { advertise }),
    ...(metricsPort === undefined ? {} : { metricsPort }),
    ...(options.metricsHost === undefined ? {} : { metricsHost: options.metricsHost }),
    dir,
    capacityBytes,
    shardBytes,
    compactionIntervalMs: parseDuration(options.compactionInterval),
    scrubBytesPerSec,
    scrubPassIntervalMs,
    ...(options.id === undefined ? {} : { id: options.id }),
    ...(options.spm === undefined ? {} : { spm: parseSpmList(options.spm) }),
    ...(security ? { security } : {}),
    log: (line) => process.stderr.write(`peer: ${line}\n`),
  });
  announceRole("peer", `peer ${peer.id}`, peer, options.host, security);
  await stopOnSignals(() => peer.stop());
}

/** `--scrub-rate`: a size per second, or 0 / off for no scrub. */
export function parseScrubRate(text: string): number {
  if (text.trim().toLowerCase() === "off") return 0;
  return parseSize(text);
}

export function parseScrubInterval(text: string): number {
  const ms = parseDuration(text);
  if (ms < limits.scrubPassIntervalMsMin) {
    throw new UsageError(`--scrub-interval must be at least ${limits.scrubPassIntervalMsMin}ms, got "${text}"`);
  }
  return ms;
}
