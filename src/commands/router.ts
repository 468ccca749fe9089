// `mictlanx router`: run a gateway until SIGINT/SIGTERM.
import { parsePort, resolveSpm } from "../lib/defaults.ts";
import { UsageError } from "../lib/errors.ts";
import { parseAddress } from "../net/address.ts";
import { parseDuration } from "../lib/size.ts";
import { limits } from "../lib/limits.ts";
import { stopOnSignals } from "./signals.ts";
import { announceRole, nodeSecurity, type TlsFlags } from "./security-flags.ts";
import { metricsPortFor } from "../net/metrics-server.ts";
import { resolveAdvertise } from "../lib/advertise.ts";

export async function runRouterCommand(flags: { port: string; host: string; advertise?: string; spm?: string; metricsPort?: string; metricsHost?: string; s3Port?: string; s3Region?: string; s3Domain?: string; s3MultipartLifetime?: string; serveHeldReads?: boolean } & TlsFlags): Promise<void> {
  const spm = resolveSpm(flags.spm);
  for (const address of spm) parseAddress(address); // a usage error now rather than on the first request
  const port = parsePort(flags.port);
  const advertise = resolveAdvertise("router", flags.host, flags.advertise, port);
  const security = nodeSecurity("router", flags);
  const { startRouter } = await import("../roles/router/router.ts");
  const metricsPort = metricsPortFor(flags.metricsPort, port);
  const s3Port = flags.s3Port === undefined ? undefined : parsePort(flags.s3Port);
  if (flags.s3Domain !== undefined && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(flags.s3Domain)) {
    throw new UsageError(`--s3-domain ${JSON.stringify(flags.s3Domain)} is not a domain name (e.g. s3.example.com: requests to BUCKET.s3.example.com name BUCKET)`);
  }
  const s3MultipartUploadMs = flags.s3MultipartLifetime === undefined ? undefined : parseDuration(flags.s3MultipartLifetime);
  if (s3MultipartUploadMs !== undefined && (s3MultipartUploadMs <= 0 || s3MultipartUploadMs > limits.s3MultipartUploadMsMax)) {
    throw new UsageError(`--s3-multipart-lifetime must be more than 0 and at most ${limits.s3MultipartUploadMsMax / 86_400_000}d, got ${flags.s3MultipartLifetime}`);
  }
  const router = await startRouter({
    host: flags.host,
    port,
    ...(advertise === undefined ? {} : { advertise }),
    ...(metricsPort === undefined ? {} : { metricsPort }),
    ...(flags.metricsHost === undefined ? {} : { metricsHost: flags.metricsHost }),
    spm,
    ...(s3Port === undefined ? {} : { s3Port }),
    ...(flags.s3Region === undefined ? {} : { s3Region: flags.s3Region }),
    ...(flags.s3Domain === undefined ? {} : { s3Domain: flags.s3Domain }),
    ...(flags.serveHeldReads ? { serveHeldReads: true } : {}),
    ...(s3MultipartUploadMs === undefined ? {} : { s3MultipartUploadMs }),
    ...(security ? { security } : {}),
    log: (line) => process.stderr.write(`router: ${line}\n`),
  });
  announceRole("router", "router", router, flags.host, security, router.s3Url ? ` (s3 on ${router.s3Url})` : "");
  await stopOnSignals(() => router.stop());
}
