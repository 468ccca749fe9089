// Serves a role's metrics over HTTP: GET /metrics in the Prometheus text format.
import type { MetricsRegistry } from "../lib/metrics.ts";
import { UsageError } from "../lib/errors.ts";
import { listenError } from "./listen-error.ts";

export interface MetricsServer {
  port: number;
  stop(): void;
}

export function serveMetrics(host: string, port: number, registry: MetricsRegistry): MetricsServer {
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname: host,
      port,
      fetch(request) {
        const path = new URL(request.url).pathname;
        if (path === "/metrics") return new Response(registry.render(), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
        return new Response("mictlanx metrics: GET /metrics\n", { status: 404 });
      },
    });
  } catch (error) {
    throw listenError(host, port, "--metrics-port", error);
  }
  return { port: server.port ?? port, stop: () => server.stop(true) };
}

/** `--metrics-port`: "off", a number, or (the default) the role's port + 1000; 0 when the role's port is 0. */
export function metricsPortFor(flag: string | undefined, servicePort: number): number | undefined {
  if (flag === "off") return undefined;
  if (flag !== undefined) {
    const port = Number(flag);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--metrics-port must be a port, 0 (any free one) or off; got "${flag}"`);
    return port;
  }
  return servicePort === 0 || servicePort + metricsPortOffset > 65535 ? 0 : servicePort + metricsPortOffset;
}

/** The default metrics port is the role's port plus this. */
export const metricsPortOffset = 1000;
