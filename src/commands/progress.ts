// A one-line progress bar on stderr for transfers that take more than about a second: bytes
// done, percent and ETA when the total is known, and the recent rate. Drawn only when stderr is
// a terminal; when it is piped or redirected nothing extra is written, ever.
import { formatBytes } from "../lib/size.ts";

export interface ProgressSink {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** What is moving, e.g. "put photos/cat.jpg"; drawn as given, so names in it must already be `printable`. */
  label: string;
  /** Total bytes when known (a file); unknown for stdin. */
  total?: number;
  out?: ProgressSink;
  now?: () => number;
  /** Nothing is drawn before this much time has passed (default 1 s). */
  delayMs?: number;
  /** Redraw at most this often (default 100 ms). */
  intervalMs?: number;
  /** Redraw on a timer too, so rate and ETA move while bytes stall (default true). */
  timer?: boolean;
}

/** The rate is measured over this recent window, so it follows changes. */
const rateWindowMs = 3_000;

export class Progress {
  private readonly out: ProgressSink;
  private readonly now: () => number;
  private readonly startedMs: number;
  private readonly delayMs: number;
  private readonly intervalMs: number;
  private readonly samples: Array<{ ms: number; done: number }> = [];
  private done = 0;
  private lastDrawMs = Number.NEGATIVE_INFINITY;
  private drawn = false;
  private finished = false;
  private readonly ticker: ReturnType<typeof setInterval> | undefined;
  private total: number | undefined;

  constructor(private readonly options: ProgressOptions) {
    this.out = options.out ?? process.stderr;
    this.now = options.now ?? (() => performance.now());
    this.startedMs = this.now();
    this.delayMs = options.delayMs ?? 1_000;
    this.intervalMs = options.intervalMs ?? 100;
    this.samples.push({ ms: this.startedMs, done: 0 });
    this.total = options.total;
    if (this.enabled && options.timer !== false) {
      this.ticker = setInterval(() => this.tick(), this.intervalMs);
      this.ticker.unref?.();
    }
  }

  /** Only a terminal gets a progress bar. */
  get enabled(): boolean {
    return this.out.isTTY === true;
  }

  /** Bytes done so far (cumulative), and the total once it is known. */
  update(done: number, total?: number): void {
    this.done = done;
    if (total !== undefined) this.total = total;
    this.tick();
  }

  tick(): void {
    if (!this.enabled || this.finished) return;
    const ms = this.now();
    this.samples.push({ ms, done: this.done });
    while (this.samples.length > 2 && (this.samples[0] as { ms: number }).ms < ms - rateWindowMs) this.samples.shift();
    if (ms - this.startedMs < this.delayMs || ms - this.lastDrawMs < this.intervalMs) return;
    this.lastDrawMs = ms;
    this.drawn = true;
    this.out.write(`\r${this.line(ms, (this.out.columns || 80) - 1)}\u001b[K`); // columns 0 or unknown (some ptys): 80
  }

  /** Clear the bar (if one was drawn) and stop redrawing. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.ticker) clearInterval(this.ticker);
    if (this.drawn) this.out.write("\r\u001b[K");
  }

  /** The text of the bar at time `ms`, at most `width` characters: the label gives way first (exposed for tests). */
  line(ms: number = this.now(), width = Number.POSITIVE_INFINITY): string {
    const oldest = this.samples[0] as { ms: number; done: number };
    const spanMs = ms - oldest.ms;
    const rate = spanMs > 0 ? ((this.done - oldest.done) * 1000) / spanMs : 0;
    // Fixed widths, so the line does not jitter and the label keeps one length on a narrow terminal.
    const parts: string[] = [];
    const total = this.total;
    if (total !== undefined && total > 0) {
      const share = Math.min(1, this.done / total);
      const bar = 10;
      const filled = Math.round(share * bar);
      parts.push(`[${"#".repeat(filled)}${".".repeat(bar - filled)}]`, `${Math.floor(share * 100)}%`.padStart(4), `${formatBytes(this.done).padStart(8)} / ${formatBytes(total)}`);
    } else {
      parts.push(formatBytes(this.done).padStart(8));
    }
    parts.push(`${formatBytes(rate).padStart(8)}/s`);
    if (total !== undefined && total > this.done) parts.push(`ETA ${rate > 0 ? formatDuration(((total - this.done) / rate) * 1000) : "--"}`.padEnd(9));
    const stats = parts.join(" ");
    const room = width - stats.length - 1;
    const label = this.options.label;
    if (room >= label.length) return `${label} ${stats}`;
    if (room >= 8) return `…${label.slice(label.length - room + 1)} ${stats}`;
    return stats.slice(0, Math.max(0, width));
  }
}

export function formatDuration(ms: number): string {
  const seconds = Math.ceil(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}
