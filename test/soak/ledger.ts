// What the soak knows about each key, and the rule it judges every read by.
//
// A key's history is the list of writes attempted on it, in order (writes to one key never
// overlap: one worker owns the key and runs one write on it at a time). Entry 0 is "absent",
// acknowledged by construction (the VSS starts empty). A write that is acknowledged becomes the
// floor; a write that failed has an unknown outcome (it may have committed) and stays in the
// history. The states a key may be in are the floor and everything attempted after it. A read
// that ran from t0 to t1 may see any state from the floor at t0 to the last attempt at t1; a
// wrong byte is never excused.
import { assert } from "../../src/lib/assert.ts";

export type BallState = { kind: "absent" } | { kind: "present"; size: number; sha256: string };
export type Outcome = "acked" | "pending" | "unknown";

export interface Attempt {
  index: number;
  state: BallState;
  /** For people: which write this was (worker op number, kind, size, when). */
  label: string;
  outcome: Outcome;
}

export const absent: BallState = { kind: "absent" };

export class KeyLedger {
  private readonly history: Attempt[] = [{ index: 0, state: absent, label: "#0 never written", outcome: "acked" }];
  private floor = 0;
  private writing = false;
  /** No write before this (ms, the worker's clock) after a write of unknown outcome. */
  private settledAtMs = 0;

  constructor(
    readonly key: string,
    /** The group the key's balls are put in (undefined: its own, named by its key). */
    readonly ballId: string | undefined,
    private readonly settleMs: number,
  ) {}

  canWrite(nowMs: number): boolean {
    return !this.writing && nowMs >= this.settledAtMs;
  }

  /** A write starts; returns its index. The caller has checked canWrite. */
  begin(state: BallState, label: string): number {
    assert(!this.writing, `${this.key}: a write began while another was running`);
    this.writing = true;
    this.history.push({ index: this.history.length, state, label, outcome: "pending" });
    return this.history.length - 1;
  }

  ack(index: number): void {
    const attempt = this.running(index);
    attempt.outcome = "acked";
    this.floor = index;
    this.writing = false;
  }

  fail(index: number, nowMs: number): void {
    const attempt = this.running(index);
    attempt.outcome = "unknown";
    this.writing = false;
    this.settledAtMs = nowMs + this.settleMs;
  }

  /** Writes attempted so far, and whether one is running: a read that saw neither change saw no write. */
  attempts(): number {
    return this.history.length;
  }

  busy(): boolean {
    return this.writing;
  }

  /** Where a read starts: its acceptable states begin at the floor of this moment. */
  mark(): number {
    return this.floor;
  }

  /** States acceptable for a read that started at `mark` and ends now. */
  since(mark: number): Attempt[] {
    assert(mark >= 0 && mark <= this.floor, `${this.key}: mark ${mark} past the floor ${this.floor}`);
    return this.history.slice(mark);
  }

  /** States the key may have been in just before write `index` (which started at `mark`). */
  before(index: number, mark: number): Attempt[] {
    return this.history.slice(mark, index);
  }

  /** States the key may be in now. */
  current(): Attempt[] {
    return this.history.slice(this.floor);
  }

  /** True when every state the key may be in holds data (so a missing ball is a lost one). */
  mustExist(mark = this.floor): boolean {
    return this.since(mark).every((attempt) => attempt.state.kind === "present");
  }

  private running(index: number): Attempt {
    const attempt = this.history[index];
    assert(this.writing && attempt !== undefined && index === this.history.length - 1 && attempt.outcome === "pending", `${this.key}: write ${index} is not the one running`);
    return attempt;
  }
}

/** The first acceptable attempt that `observed` is, or undefined. */
export function matchState(observed: BallState, acceptable: readonly Attempt[]): Attempt | undefined {
  return acceptable.find((attempt) => sameState(attempt.state, observed));
}

export function sameState(a: BallState, b: BallState): boolean {
  if (a.kind === "absent" || b.kind === "absent") return a.kind === b.kind;
  return a.size === b.size && a.sha256 === b.sha256;
}

export function describeState(state: BallState): string {
  return state.kind === "absent" ? "absent" : `${state.size} B sha256 ${state.sha256.slice(0, 12)}…`;
}

export function describeAcceptable(acceptable: readonly Attempt[]): string {
  return acceptable.map((attempt) => `${attempt.label} [${attempt.outcome}] = ${describeState(attempt.state)}`).join(" | ");
}
