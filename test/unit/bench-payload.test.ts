// The benchmark's payloads: ball i is the base with i stamped in front, and a read is checked
// against it byte for byte without building a copy.
import { expect, test } from "bun:test";
import { isPayload, stampPayload } from "../../src/bench/bench.ts";
import { randomBytes, seededRandom } from "../support/random.ts";

const { random, seed } = seededRandom("bench-payload");

test(`a stamped buffer matches its index only; any changed byte is caught (seed ${seed})`, () => {
  for (const size of [0, 3, 8, 9, 4096, 65_536 + 7]) {
    const base = randomBytes(random, size);
    const ball = stampPayload(new Uint8Array(base), 42);
    expect(isPayload(ball, base, 42)).toBe(true);
    if (size >= 8) expect(isPayload(ball, base, 41)).toBe(false);
    for (const at of size === 0 ? [] : [0, Math.floor(size / 2), size - 1]) {
      const damaged = new Uint8Array(ball);
      damaged[at] = damaged[at]! ^ 0x01;
      expect(isPayload(damaged, base, 42)).toBe(false);
    }
    expect(isPayload(new Uint8Array(size + 1), base, 42)).toBe(false);
  }
});

test("a reused buffer restamped for another ball is exactly that ball", () => {
  const base = randomBytes(random, 1000);
  const buffer = stampPayload(new Uint8Array(base), 1);
  stampPayload(buffer, 2);
  expect(isPayload(buffer, base, 2)).toBe(true);
  expect(isPayload(buffer, base, 1)).toBe(false);
  // The same bytes a fresh copy stamped with 2 would have.
  expect(Buffer.compare(buffer, stampPayload(new Uint8Array(base), 2))).toBe(0);
});
