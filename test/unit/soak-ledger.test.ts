// The soak's ledger rule (test/soak/ledger.ts): a key may be in its last acknowledged state or
// any state attempted after it; a read may see anything from the floor at its start to the last
// attempt at its end; nothing else is excused.
import { expect, test } from "bun:test";
import { absent, KeyLedger, matchState, sameState, type BallState } from "../soak/ledger.ts";

const a: BallState = { kind: "present", size: 3, sha256: "aa" };
const b: BallState = { kind: "present", size: 3, sha256: "bb" };
const settleMs = 1_000;
const states = (attempts: Array<{ state: BallState }>) => attempts.map((attempt) => attempt.state);

test("a key starts absent, acknowledged; an acknowledged write becomes the only state", () => {
  const key = new KeyLedger("k", undefined, settleMs);
  expect(states(key.current())).toEqual([absent]);
  expect(key.mustExist()).toBe(false);
  const put = key.begin(a, "put a");
  expect(states(key.current())).toEqual([absent, a]); // while it runs, either
  key.ack(put);
  expect(states(key.current())).toEqual([a]);
  expect(key.mustExist()).toBe(true);
  expect(matchState(absent, key.current())).toBeUndefined();
});

test("a failed write keeps the state before it and adds its own, and holds the key for the settle time", () => {
  const key = new KeyLedger("k", undefined, settleMs);
  key.ack(key.begin(a, "put a"));
  const failed = key.begin(b, "put b");
  key.fail(failed, 10_000);
  expect(states(key.current())).toEqual([a, b]);
  expect(key.canWrite(10_000 + settleMs - 1)).toBe(false);
  expect(key.canWrite(10_000 + settleMs)).toBe(true);
  const removed = key.begin(absent, "delete");
  key.ack(removed);
  expect(states(key.current())).toEqual([absent]); // an acknowledged write ends the uncertainty
});

test("a read that spans writes may see any state from its start's floor to the last attempt", () => {
  const key = new KeyLedger("k", undefined, settleMs);
  key.ack(key.begin(a, "put a"));
  const mark = key.mark();
  const attemptsBefore = key.attempts();
  const overwrite = key.begin(b, "put b");
  expect(key.busy()).toBe(true);
  key.ack(overwrite);
  expect(states(key.since(mark))).toEqual([a, b]);
  expect(states(key.since(key.mark()))).toEqual([b]); // a read starting now no longer may see a
  expect(key.attempts()).toBe(attemptsBefore + 1);
  expect(states(key.before(overwrite, mark))).toEqual([a]);
});

test("one write at a time per key, and only the running one is settled", () => {
  const key = new KeyLedger("k", undefined, settleMs);
  const first = key.begin(a, "put a");
  expect(key.canWrite(0)).toBe(false);
  expect(() => key.begin(b, "put b")).toThrow("another was running");
  key.ack(first);
  expect(() => key.ack(first)).toThrow("is not the one running");
  expect(() => key.since(key.mark() + 1)).toThrow("past the floor");
});

test("states match on size and sha256 both; absent only matches absent", () => {
  expect(sameState(a, { kind: "present", size: 3, sha256: "aa" })).toBe(true);
  expect(sameState(a, { kind: "present", size: 4, sha256: "aa" })).toBe(false);
  expect(sameState(a, b)).toBe(false);
  expect(sameState(absent, absent)).toBe(true);
  expect(sameState(absent, a)).toBe(false);
});
