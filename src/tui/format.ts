// Short forms for a dashboard cell: ages, durations, rates, bars. Names and messages (peer ids,
// addresses, events that quote keys) are drawn through `printable`: never raw to the terminal.
import { formatBytes } from "../lib/size.ts";
import type { ScrubProgressWire } from "../protocol/peer.ts";

/** A heartbeat age: "0.4s", "12s", "3m05s", "2h". */
export function age(ms: number): string {
  if (ms < 0) return "0.0s";
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  return duration(ms);
}

/** An uptime: "45s", "3m12s", "2h03m", "3d04h". */
export function duration(ms: number): string {
  const seconds = Math.floor(Math.max(0, ms) / 1000);
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const rest = seconds % 60;
  const two = (value: number) => String(value).padStart(2, "0");
  if (days > 0) return `${days}d${two(hours)}h`;
  if (hours > 0) return `${hours}h${two(minutes)}m`;
  if (minutes > 0) return `${minutes}m${two(rest)}s`;
  return `${rest}s`;
}

/** A poll interval: "500ms", "1s", "2.5s". */
export function intervalText(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${(ms / 1000).toFixed(1)}s`;
}

/** A count per second: "0", "7.5", "123", "12.3k". */
export function perSec(value: number): string {
  if (!Number.isFinite(value) || Math.abs(value) < 0.05) return "0";
  const magnitude = Math.abs(value);
  if (magnitude < 10) return value.toFixed(1);
  if (magnitude < 10_000) return value.toFixed(0);
  return `${(value / 1000).toFixed(1)}k`;
}

/** Bytes per second, signed when it can go down: "1.2 MiB/s", "-40 KiB/s". */
export function bytesPerSec(value: number): string {
  if (!Number.isFinite(value) || Math.abs(value) < 0.5) return "0 B/s";
  return `${value < 0 ? "-" : ""}${formatBytes(Math.abs(value))}/s`;
}

/** A whole count with thin grouping: 1234567 → "1,234,567". */
export function count(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

/** A bar `width` cells wide, filled in proportion (eighths at the edge), the rest shaded. */
export function bar(fraction: number, width: number): { filled: string; empty: string } {
  if (width <= 0) return { filled: "", empty: "" };
  const clamped = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const eighths = Math.round(clamped * width * 8);
  const full = Math.floor(eighths / 8);
  const partial = eighths % 8;
  const partials = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
  const filled = "█".repeat(full) + (partial > 0 ? (partials[partial] ?? "") : "");
  return { filled, empty: "░".repeat(width - full - (partial > 0 ? 1 : 0)) };
}

/**
 * A peer's scrub in one line: "scrub: pass 3, 42 %, 0 corrupt, last full pass 5m00s ago, 8.0 MiB/s"
 * while it reads, "pass 2 done" while it waits for the next, "off" when it is off.
 */
export function scrubSummary(scrub: ScrubProgressWire, nowMs: number): string {
  if (scrub.state === "off") return "scrub: off";
  const where = scrub.state === "scanning" ? `pass ${scrub.passes + 1}, ${Math.floor(scrub.passProgress * 100)} %` : `pass ${scrub.passes} done`;
  const last = scrub.lastPassMs === undefined ? "no full pass yet" : `last full pass ${duration(nowMs - scrub.lastPassMs)} ago`;
  return `scrub: ${where}, ${count(scrub.corruptFound)} corrupt, ${last}, ${bytesPerSec(scrub.ratePerSec)}`;
}

/** Cut a string to `width` characters, marking the cut with "…". */
export function fit(text: string, width: number): string {
  if (width <= 0) return "";
  if (text.length <= width) return text;
  return width === 1 ? "…" : `${text.slice(0, width - 1)}…`;
}

export { formatBytes };
export { printable } from "../lib/names.ts";
