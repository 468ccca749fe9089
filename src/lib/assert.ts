// Invariants, TigerBeetle style: a failed assert is a bug in mictlanx, never a user error.
// Pair them: check a record before it is written and again after it is read.
export class AssertionError extends Error {
  override name = "AssertionError";
}

export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function unreachable(value: never, message = "unreachable"): never {
  throw new AssertionError(`${message}: ${String(value)}`);
}
