import { describe, expect, test } from "bun:test";
import { MetricsRegistry } from "../../src/lib/metrics.ts";
import { metricsPortFor } from "../../src/net/metrics-server.ts";
import { parsePrometheus, total } from "../support/prometheus.ts";

describe("metrics registry", () => {
  test("counters, gauges and histograms render as valid Prometheus text", () => {
    const registry = new MetricsRegistry();
    const requests = registry.counter("x_requests_total", "requests");
    requests.inc({ op: "get", outcome: "ok" });
    requests.inc({ op: "get", outcome: "ok" }, 2);
    requests.inc({ op: 'we"ird\\', outcome: "not_found" });
    registry.gauge("x_bytes", "bytes", () => [[{ kind: "used" }, 10]]);
    const latency = registry.histogram("x_seconds", "latency", [0.01, 0.1, 1]);
    latency.observe(0.05, { op: "get" });
    latency.observe(5, { op: "get" });
    const samples = parsePrometheus(registry.render());
    expect(total(samples, "x_requests_total", { op: "get", outcome: "ok" })).toBe(3);
    expect(total(samples, "x_bytes", { kind: "used" })).toBe(10);
    expect(total(samples, "x_seconds_bucket", { op: "get", le: "0.01" })).toBe(0);
    expect(total(samples, "x_seconds_bucket", { op: "get", le: "0.1" })).toBe(1);
    expect(total(samples, "x_seconds_bucket", { op: "get", le: "+Inf" })).toBe(2);
    expect(total(samples, "x_seconds_count", { op: "get" })).toBe(2);
    expect(total(samples, "x_seconds_sum", { op: "get" })).toBeCloseTo(5.05);
  });

  test("names are checked and registered once; counters never go down", () => {
    const registry = new MetricsRegistry();
    expect(() => registry.counter("bad-name", "x")).toThrow();
    registry.counter("ok_total", "x");
    expect(() => registry.counter("ok_total", "x")).toThrow();
    expect(() => registry.counter("c_total", "x").inc({}, -1)).toThrow();
  });

  test("--metrics-port: default is the role's port + 1000, 0 stays free, off disables, garbage is a usage error", () => {
    expect(metricsPortFor(undefined, 7200)).toBe(8200);
    expect(metricsPortFor(undefined, 0)).toBe(0);
    expect(metricsPortFor(undefined, 65000)).toBe(0);
    expect(metricsPortFor("off", 7200)).toBeUndefined();
    expect(metricsPortFor("9100", 7200)).toBe(9100);
    expect(() => metricsPortFor("lots", 7200)).toThrow("--metrics-port");
  });
});
