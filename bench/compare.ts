// `npm run bench -- --compare FILE`: each figure of this run beside the same figure of an
// earlier run's JSON (bench/results/latest.json, or previous.json, which each run leaves behind),
// as a ratio, so a change is judged in one command. Rows are matched by their "what".
import { readFileSync } from "node:fs";
import { z } from "zod";

export interface Row {
  what: string;
  value: number;
  unit: string;
  baseline?: { what: string; value: number };
  target?: { value: number; higherIsBetter: boolean };
}

const rowSchema = z.object({
  what: z.string(),
  value: z.number(),
  unit: z.string(),
  target: z.object({ value: z.number(), higherIsBetter: z.boolean() }).optional(),
});
const resultsSchema = z.object({ machine: z.string(), rows: z.array(rowSchema) });

export interface EarlierRun {
  machine: string;
  rows: z.infer<typeof rowSchema>[];
}

/** An earlier run's results file, checked: a file of another shape is refused with its path. */
export function readEarlierRun(path: string): EarlierRun {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`--compare ${path}: cannot read it (${error instanceof Error ? error.message : String(error)})`);
  }
  const parsed = resultsSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`--compare ${path}: not a bench results file (bench/results/latest.json): ${parsed.error.issues[0]?.message ?? "bad shape"}`);
  return parsed.data;
}

/**
 * Which way a figure should move: a row with a target says so; without one, rates (per second)
 * are better higher and everything else (ms, MiB) lower.
 */
export function higherIsBetter(row: Pick<Row, "unit" | "target">): boolean {
  if (row.target) return row.target.higherIsBetter;
  return row.unit.endsWith("/s");
}

/** now ÷ earlier, and whether that is better, worse or the same within 5 %. */
export function compareRow(now: Row, earlier: number): { ratio: number; verdict: "better" | "worse" | "same" } {
  const ratio = earlier === 0 ? (now.value === 0 ? 1 : Infinity) : now.value / earlier;
  if (Math.abs(ratio - 1) < 0.05) return { ratio, verdict: "same" };
  const up = ratio > 1;
  return { ratio, verdict: up === higherIsBetter(now) ? "better" : "worse" };
}

/** A markdown table of every row of this run that the earlier run also has. */
export function comparisonTable(rows: Row[], earlier: EarlierRun): string {
  const before = new Map(earlier.rows.map((row) => [row.what, row]));
  const lines = [`Against ${earlier.machine}:`, "", "| measure | earlier | now | now ÷ earlier | |", "|---|---:|---:|---:|:-:|"];
  for (const row of rows) {
    const old = before.get(row.what);
    if (!old) {
      lines.push(`| ${row.what} | (not measured) | ${fmt(row.value)} ${row.unit} | | |`);
      continue;
    }
    const { ratio, verdict } = compareRow(row, old.value);
    lines.push(`| ${row.what} | ${fmt(old.value)} ${old.unit} | ${fmt(row.value)} ${row.unit} | ${Number.isFinite(ratio) ? ratio.toFixed(2) : "∞"} | ${verdict} |`);
  }
  return lines.join("\n");
}

export function fmt(value: number): string {
  return value >= 100 ? Math.round(value).toLocaleString("en-US") : value.toFixed(value >= 10 ? 1 : 2);
}
