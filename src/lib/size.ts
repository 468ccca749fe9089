// Human sizes: "4KiB", "1MiB", "256kb", "10GiB", "512", "1.5GiB". Binary (KiB) and decimal
// (kB) units both work; a bare number is bytes.
import { UsageError } from "./errors.ts";
import { limits } from "./limits.ts";

const unitBytes: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = match?.[2]?.toLowerCase();
  const factor = unit === undefined ? undefined : unitBytes[unit];
  if (!match || factor === undefined) {
    throw new UsageError(`"${text}" is not a size; try 4KiB, 1MiB, 256kb or 10GiB`);
  }
  const bytes = Math.round(Number(match[1]) * factor);
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`size "${text}" is too large`);
  return bytes;
}

export function formatBytes(bytes: number): string {
  const names = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let index = 0;
  while (value >= 1024 && index < names.length - 1) {
    value /= 1024;
    index += 1;
  }
  const digits = index === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${names[index]}`;
}

export function parseDuration(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!match) throw new UsageError(`"${text}" is not a duration; try 500ms, 10s or 2m`);
  const value = Number(match[1]);
  const unit = match[2] ?? "s";
  const factor = unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : 3_600_000;
  return Math.round(value * factor);
}

/**
 * A `--chunk-size` as typed (put, bench): from chunkSizeFlagBytesMin to `bytesMax` (the frame's
 * chunk bound, less what compression and encryption add when they are on, said in `note`).
 */
export function parseChunkSizeFlag(text: string, bytesMax: number = limits.chunkBytesMax, note = ""): number {
  const bytes = parseSize(text);
  const bytesMin = limits.chunkSizeFlagBytesMin;
  if (bytes < bytesMin || bytes > bytesMax) {
    throw new UsageError(`--chunk-size must be ${formatBytes(bytesMin)} to ${formatBytes(bytesMax)} (${bytesMin} to ${bytesMax} B)${note}; got ${text}`);
  }
  return bytes;
}
