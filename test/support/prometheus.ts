// A strict enough reader of the Prometheus text format to tell valid output from garbage.
import { expect } from "bun:test";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const sampleRe = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN)$/;

export function parsePrometheus(text: string): Sample[] {
  expect(text.endsWith("\n")).toBe(true);
  const samples: Sample[] = [];
  const typed = new Set<string>();
  for (const line of text.trimEnd().split("\n")) {
    if (line.startsWith("# HELP ")) continue;
    if (line.startsWith("# TYPE ")) {
      const [, , name, type] = line.split(" ");
      expect(["counter", "gauge", "histogram", "summary", "untyped"]).toContain(type ?? "");
      typed.add(name ?? "");
      continue;
    }
    const match = sampleRe.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const name = match[1] ?? "";
    const family = name.replace(/_(bucket|sum|count)$/, "");
    if (!typed.has(name) && !typed.has(family)) throw new Error(`sample ${name} has no # TYPE line before it`);
    const labels: Record<string, string> = {};
    for (const pair of (match[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] ?? ""] = pair[2] ?? "";
    samples.push({ name, labels, value: Number(match[4]) });
  }
  return samples;
}

export function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
    .reduce((sum, sample) => sum + sample.value, 0);
}
