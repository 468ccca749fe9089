import { describe, expect, test } from "bun:test";
import { FrameDecoder, encodeFrame, frameHeaderBytes } from "../../src/protocol/frame.ts";
import { decodeBody, encodeBody } from "../../src/protocol/codec.ts";
import { FrameTooLargeError, MictlanxError } from "../../src/lib/errors.ts";
import { seededRandom } from "../support/random.ts";

const frameBytesMax = 1 << 20;

function sampleFrames(random: () => number): Uint8Array[] {
  const bodies: Uint8Array[] = [new Uint8Array(0)];
  for (let i = 0; i < 200; i += 1) {
    const size = Math.floor(random() ** 3 * 70_000);
    const body = new Uint8Array(size);
    for (let j = 0; j < size; j += 997) body[j] = Math.floor(random() * 256);
    bodies.push(body);
  }
  return bodies;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const total = parts.reduce((sum, part) => sum + part.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

function decodeInSplits(stream: Uint8Array, cuts: number[]): Uint8Array[] {
  const decoder = new FrameDecoder(frameBytesMax);
  const frames: Uint8Array[] = [];
  let at = 0;
  for (const cut of [...cuts, stream.byteLength]) {
    frames.push(...decoder.push(stream.subarray(at, cut)));
    at = cut;
  }
  expect(decoder.bufferedBytes).toBe(0);
  return frames;
}

describe("FrameDecoder", () => {
  const { random, seed } = seededRandom();
  const bodies = sampleFrames(random);
  const stream = concat(bodies.map((body) => encodeFrame(body, frameBytesMax)));

  test(`any split yields the same frames (seed ${seed})`, () => {
    const whole = decodeInSplits(stream, []);
    expect(whole.length).toBe(bodies.length);
    whole.forEach((frame, i) => expect(frame).toEqual(bodies[i]!));
    for (let round = 0; round < 20; round += 1) {
      const cuts = Array.from({ length: 1 + Math.floor(random() * 300) }, () => Math.floor(random() * stream.byteLength)).sort((a, b) => a - b);
      const split = decodeInSplits(stream, cuts);
      expect(split.length).toBe(bodies.length);
      split.forEach((frame, i) => expect(frame).toEqual(bodies[i]!));
    }
  });

  test("one byte at a time yields the same frames", () => {
    const small = concat(bodies.slice(0, 30).map((body) => encodeFrame(body, frameBytesMax)));
    const cuts = Array.from({ length: small.byteLength - 1 }, (_, i) => i + 1);
    const frames = decodeInSplits(small, cuts);
    expect(frames.length).toBe(30);
    frames.forEach((frame, i) => expect(frame).toEqual(bodies[i]!));
  });

  test("a length prefix over the bound is refused before buffering the body", () => {
    const decoder = new FrameDecoder(1024);
    const header = new Uint8Array([0, 0, 4, 1]); // 1025
    expect(() => decoder.push(header)).toThrow(FrameTooLargeError);
    expect(decoder.bufferedBytes).toBeLessThanOrEqual(frameHeaderBytes);
  });

  test("exactly the bound is accepted", () => {
    const decoder = new FrameDecoder(1024);
    const frames = decoder.push(encodeFrame(new Uint8Array(1024), 1024));
    expect(frames.length).toBe(1);
    expect(() => encodeFrame(new Uint8Array(1025), 1024)).toThrow(FrameTooLargeError);
  });

  test("a truncated frame stays pending, then completes", () => {
    const frame = encodeFrame(new Uint8Array([1, 2, 3, 4, 5]), frameBytesMax);
    const decoder = new FrameDecoder(frameBytesMax);
    expect(decoder.push(frame.subarray(0, 6))).toEqual([]);
    expect(decoder.bufferedBytes).toBe(2);
    expect(decoder.push(frame.subarray(6))).toEqual([new Uint8Array([1, 2, 3, 4, 5])]);
  });
});

describe("codec", () => {
  test("round trip keeps binary as bytes", () => {
    const value = { id: 7, op: "x", args: { data: new Uint8Array([0, 255, 3]), n: 2 ** 40, s: "ñ" } };
    const back = decodeBody(encodeBody(value)) as typeof value;
    expect(back.id).toBe(7);
    expect(new Uint8Array(back.args.data)).toEqual(new Uint8Array([0, 255, 3]));
    expect(back.args.n).toBe(2 ** 40);
    expect(back.args.s).toBe("ñ");
  });

  test("garbage is a typed bad_request", () => {
    try {
      decodeBody(new Uint8Array([0x92, 0x01])); // an array of 2 with one element
      throw new Error("expected a throw");
    } catch (error) {
      expect(error).toBeInstanceOf(MictlanxError);
      expect((error as MictlanxError).code).toBe("bad_request");
    }
  });
});
