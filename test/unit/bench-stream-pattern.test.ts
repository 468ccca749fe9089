// The streamed bench balls (bench/stream-pattern.ts): made and checked in pieces of any size,
// the same bytes whichever way a ball is cut, and a changed, moved or missing byte is caught.
import { expect, test } from "bun:test";
import { fillPattern, PatternCheck, patternHeaderBytes, patternPieces } from "../../bench/stream-pattern.ts";
import { randomBytes, seededRandom } from "../support/random.ts";

const { random, seed } = seededRandom("bench-stream-pattern");

async function collect(pieces: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const piece of pieces) parts.push(Uint8Array.from(piece)); // the generator reuses its buffer
  return Buffer.concat(parts);
}

test(`a ball is the same bytes whatever the piece size (seed ${seed})`, async () => {
  const base = randomBytes(random, 64);
  const whole = fillPattern(new Uint8Array(1000), base, 3, 0);
  for (const pieceBytes of [1, 7, 16, 64, 100, 999, 1000, 4096]) {
    expect(Buffer.compare(await collect(patternPieces(base, 3, 1000, pieceBytes)), whole)).toBe(0);
  }
  // Any stretch filled from its offset is the same stretch of the whole.
  for (const [offset, length] of [[0, 5], [10, 60], [63, 2], [640, 360]] as const) {
    expect(Buffer.compare(fillPattern(new Uint8Array(length), base, 3, offset), whole.subarray(offset, offset + length))).toBe(0);
  }
});

test("blocks differ from each other and from another ball's", () => {
  const base = randomBytes(random, 32);
  const ball = fillPattern(new Uint8Array(96), base, 1, 0);
  const other = fillPattern(new Uint8Array(96), base, 2, 0);
  expect(Buffer.compare(ball.subarray(0, 32), ball.subarray(32, 64))).not.toBe(0);
  expect(Buffer.compare(ball.subarray(0, 32), other.subarray(0, 32))).not.toBe(0);
  expect(Buffer.compare(ball.subarray(patternHeaderBytes, 32), base.subarray(patternHeaderBytes))).toBe(0);
});

test("the check passes a ball read back in other pieces, and catches a changed byte or a wrong length", async () => {
  const base = randomBytes(random, 256);
  const total = 5000;
  const whole = await collect(patternPieces(base, 9, total, 300));
  const good = new PatternCheck(base, 9);
  for (let at = 0; at < total; at += 777) good.update(whole.subarray(at, Math.min(at + 777, total)));
  good.finish(total);
  expect(good.checkedBytes).toBe(total);

  const damaged = Uint8Array.from(whole);
  const at = Math.floor(random() * total);
  damaged[at] = damaged[at]! ^ 0x40;
  const bad = new PatternCheck(base, 9);
  expect(() => {
    for (let offset = 0; offset < total; offset += 1024) bad.update(damaged.subarray(offset, Math.min(offset + 1024, total)));
  }).toThrow(/differ/);

  const wrongBall = new PatternCheck(base, 8);
  expect(() => wrongBall.update(whole.subarray(0, 256))).toThrow(/differ/);

  const short = new PatternCheck(base, 9);
  short.update(whole.subarray(0, total - 1));
  expect(() => short.finish(total)).toThrow(/read 4999 bytes, wrote 5000/);
});

test("a base shorter than the header is refused", () => {
  expect(() => fillPattern(new Uint8Array(4), new Uint8Array(patternHeaderBytes - 1), 0, 0)).toThrow(/at least/);
});
