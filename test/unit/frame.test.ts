import { describe, expect, test } from "bun:test";
import { FrameDecoder, encodeFrame, frameHeaderBytes, frameSplitFlag, frameViewBytesMin, splitFramePieces, type Frame } from "../../src/protocol/frame.ts";
import {
  decodeBody,
  decodeFrame,
  decodeMessage,
  encodeBody,
  encodeMessage,
  messageBodyBytes,
  messagePieces,
  payloadRefExtType,
  peekEnvelopeId,
  splitBinaryBytesMin,
} from "../../src/protocol/codec.ts";
import { FrameTooLargeError, MictlanxError } from "../../src/lib/errors.ts";
import { limits } from "../../src/lib/limits.ts";
import { randomBytes, seededRandom } from "../support/random.ts";

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
    frames.push(...decoder.push(stream.subarray(at, cut)).map((frame) => frame.head));
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
    expect(decoder.push(frame.subarray(6)).map((f) => new Uint8Array(f.head))).toEqual([new Uint8Array([1, 2, 3, 4, 5])]);
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

/** A frame as comparable values: plain frames have no payload. */
function shape(frame: Frame): { head: Uint8Array; payload: Uint8Array | null } {
  return { head: new Uint8Array(frame.head), payload: frame.payload === undefined ? null : new Uint8Array(frame.payload) };
}

function decodeAll(stream: Uint8Array, cuts: number[], decoder = new FrameDecoder(8 << 20)): Frame[] {
  const frames: Frame[] = [];
  let at = 0;
  for (const cut of [...cuts, stream.byteLength]) {
    frames.push(...decoder.push(stream.subarray(at, cut)));
    at = cut;
  }
  expect(decoder.bufferedBytes).toBe(0);
  return frames;
}

describe("split frames", () => {
  const { random, seed } = seededRandom("split frames");
  // Plain and split frames mixed: empty heads and payloads, small ones, and some past the view size.
  const sizes = [0, 1, 7, 4096, frameViewBytesMin - 1, frameViewBytesMin, 300_000];
  const expected: Array<{ head: Uint8Array; payload: Uint8Array | null }> = [];
  const parts: Uint8Array[] = []; // one encoded frame each
  for (let i = 0; i < 60; i += 1) {
    const head = randomBytes(random, sizes[Math.floor(random() * 4)] ?? 0);
    if (random() < 0.3) {
      parts.push(encodeFrame(head, 8 << 20));
      expected.push({ head, payload: null });
      continue;
    }
    const payload = randomBytes(random, sizes[Math.floor(random() * sizes.length)] ?? 0);
    const cut = Math.floor(random() * (payload.byteLength + 1));
    parts.push(concat(splitFramePieces(head, [payload.subarray(0, cut), payload.subarray(cut)], 8 << 20)));
    expected.push({ head, payload });
  }
  const stream = concat(parts);

  test(`plain and split frames in any split yield the same frames (seed ${seed})`, () => {
    expect(decodeAll(stream, []).map(shape)).toEqual(expected);
    for (let round = 0; round < 20; round += 1) {
      const cuts = Array.from({ length: 1 + Math.floor(random() * 400) }, () => Math.floor(random() * stream.byteLength)).sort((a, b) => a - b);
      expect(decodeAll(stream, cuts).map(shape)).toEqual(expected);
    }
  });

  test("one byte at a time yields the same frames", () => {
    const first = concat(parts.slice(0, 25));
    const frames = decodeAll(first, Array.from({ length: first.byteLength - 1 }, (_, i) => i + 1));
    expect(frames.map(shape)).toEqual(expected.slice(0, 25));
  });

  test("a large frame that arrives whole is a view of the read; a small one is copied", () => {
    const big = new Uint8Array(frameViewBytesMin * 2).fill(9);
    const read = concat(splitFramePieces(new Uint8Array([1, 2]), [big], 8 << 20));
    const [frame] = new FrameDecoder(8 << 20).push(read);
    expect(frame?.payload?.buffer).toBe(read.buffer);
    expect(frame?.head.buffer).not.toBe(read.buffer); // heads are copied: small views would pin the read
    const small = encodeFrame(new Uint8Array(100), 8 << 20);
    const [copied] = new FrameDecoder(8 << 20).push(small);
    expect(copied?.head.buffer).not.toBe(small.buffer);
    // A large frame inside a read many times its size is copied too, not to pin the whole read.
    const padded = new Uint8Array(read.byteLength * 8);
    padded.set(read);
    const [pinned] = new FrameDecoder(8 << 20).push(padded.subarray(0, read.byteLength));
    expect(pinned?.payload?.buffer).not.toBe(padded.buffer);
  });

  test("frames are plain Uint8Arrays even when the reads are Buffers (their slice() is a copy)", () => {
    const big = new Uint8Array(frameViewBytesMin * 2).fill(9);
    const read = Buffer.from(concat([...splitFramePieces(new Uint8Array([1, 2]), [big], 8 << 20), encodeFrame(new Uint8Array(frameViewBytesMin).fill(4), 8 << 20)]));
    for (const frames of [new FrameDecoder(8 << 20).push(read), decodeAll(read, [3, 1000, 70_000])]) {
      expect(frames.length).toBe(2);
      for (const frame of frames) {
        expect(Buffer.isBuffer(frame.head)).toBe(false);
        if (frame.payload) expect(Buffer.isBuffer(frame.payload)).toBe(false);
      }
    }
  });

  test("a payload target receives the payload in any split, and is not written after it is abandoned", () => {
    const payload = randomBytes(random, 200_000);
    const frame = concat(splitFramePieces(new Uint8Array([7, 7, 7]), [payload], 8 << 20));
    const stream2 = concat([frame, encodeFrame(new Uint8Array([5]), 8 << 20)]);
    for (let round = 0; round < 10; round += 1) {
      const target = new Uint8Array(payload.byteLength);
      const asked: number[] = [];
      const decoder = new FrameDecoder(8 << 20, {
        payloadTarget: (head, bytes) => {
          asked.push(head.byteLength, bytes);
          return target;
        },
      });
      const cuts = Array.from({ length: 1 + Math.floor(random() * 50) }, () => Math.floor(random() * stream2.byteLength)).sort((a, b) => a - b);
      const frames = decodeAll(stream2, cuts, decoder);
      expect(asked).toEqual([3, payload.byteLength]);
      expect(frames.length).toBe(2);
      expect(frames[0]?.payload).toBe(target);
      expect(target).toEqual(new Uint8Array(payload));
    }
    // A target of the wrong size is not used.
    const [own] = new FrameDecoder(8 << 20, { payloadTarget: () => new Uint8Array(10) }).push(frame);
    expect(own?.payload?.byteLength).toBe(payload.byteLength);
    // Abandoned half way: the rest of the payload is read and dropped, the target keeps what it had.
    const target = new Uint8Array(payload.byteLength);
    const decoder = new FrameDecoder(8 << 20, { payloadTarget: () => target });
    const half = frame.byteLength - payload.byteLength / 2;
    expect(decoder.push(frame.subarray(0, half))).toEqual([]);
    decoder.abandonPayload(target);
    const snapshot = target.slice();
    const after = decoder.push(concat([frame.subarray(half), encodeFrame(new Uint8Array([5]), 8 << 20)]));
    expect(after.map(shape)).toEqual([{ head: new Uint8Array([5]), payload: null }]);
    expect(target).toEqual(snapshot);
    expect(new Uint8Array(target.subarray(payload.byteLength / 2))).toEqual(new Uint8Array(payload.byteLength / 2));
  });

  test("a split frame whose head length does not fit it breaks the stream", () => {
    const bad = new Uint8Array(4 + 4 + 10);
    new DataView(bad.buffer).setUint32(0, (frameSplitFlag + 14) >>> 0);
    new DataView(bad.buffer).setUint32(4, 11); // 11 > 14 - 4
    const decoder = new FrameDecoder(1024);
    expect(() => decoder.push(bad)).toThrow(/head is 11 bytes but the frame holds 10/);
    const tiny = new Uint8Array([0x80, 0, 0, 2, 0, 0]);
    expect(() => new FrameDecoder(1024).push(tiny)).toThrow(/has no head length/);
  });

  test("the split flag does not lift the length bound", () => {
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, (frameSplitFlag + 1025) >>> 0);
    expect(() => new FrameDecoder(1024).push(header)).toThrow(FrameTooLargeError);
    expect(() => splitFramePieces(new Uint8Array(4), [new Uint8Array(1020)], 1024)).toThrow(FrameTooLargeError);
    expect(splitFramePieces(new Uint8Array(4), [new Uint8Array(1016)], 1024).length).toBe(2); // 4 + 4 + 1016 = 1024
  });
});

describe("a frame's buffer grows as its bytes arrive", () => {
  const MiB = 1 << 20;
  const declared = 9 * MiB;

  /** A prefix declaring 9 MiB (plain, or split with a head of all of it), and the first 10 bytes after it. */
  function halfSent(split: boolean): Uint8Array {
    const bytes = new Uint8Array(4 + 10);
    new DataView(bytes.buffer).setUint32(0, (split ? frameSplitFlag : 0) + declared);
    if (split) new DataView(bytes.buffer).setUint32(4, declared - 4);
    return bytes;
  }

  test("a prefix declaring 9 MiB followed by 10 bytes does not allocate 9 MiB", () => {
    // Measured by what the runtime counts in array buffers, not only by the decoder's own figure.
    Bun.gc(true);
    const before = process.memoryUsage().arrayBuffers;
    const decoders: FrameDecoder[] = [];
    for (let i = 0; i < 16; i += 1) {
      const decoder = new FrameDecoder(declared);
      expect(decoder.push(halfSent(i % 2 === 1))).toEqual([]);
      expect(decoder.allocatedBytes).toBeLessThanOrEqual(limits.frameBufferGrowStartBytes);
      decoders.push(decoder);
    }
    Bun.gc(true);
    const grownMiB = (process.memoryUsage().arrayBuffers - before) / MiB;
    expect(grownMiB).toBeLessThan(16); // allocated on the prefix, it was 16 × 9 MiB
    expect(decoders.length).toBe(16);
  });

  const { random, seed } = seededRandom("frame buffer grows");
  test(`what it holds stays within a share of what arrived, and the frames are the same (seed ${seed})`, () => {
    const payload = randomBytes(random, declared - 4 - 100);
    const body = randomBytes(random, declared);
    const stream = concat([...splitFramePieces(randomBytes(random, 100), [payload], declared), encodeFrame(body, declared)]);
    for (let round = 0; round < 4; round += 1) {
      const decoder = new FrameDecoder(declared);
      const frames: Frame[] = [];
      for (let at = 0; at < stream.byteLength; ) {
        const read = Math.min(stream.byteLength - at, 1 + Math.floor(random() * (round === 0 ? 4096 : 700_000)));
        frames.push(...decoder.push(stream.slice(at, at + read))); // a fresh buffer per read, like a socket's
        at += read;
        const ceiling = Math.max(limits.frameBufferGrowStartBytes, decoder.bufferedBytes / limits.frameBufferWholeAfterRatio);
        expect(decoder.allocatedBytes).toBeLessThanOrEqual(ceiling + 200);
      }
      expect(frames.length).toBe(2);
      expect(new Uint8Array(frames[0]!.payload!)).toEqual(new Uint8Array(payload));
      expect(new Uint8Array(frames[1]!.head)).toEqual(new Uint8Array(body));
      expect(decoder.allocatedBytes).toBe(0);
    }
  });
});

describe("payload references", () => {
  const big = (n: number, fill: number) => new Uint8Array(n).fill(fill);

  test("large binary values travel beside the head, uncopied, and come back as views of the payload", () => {
    const a = big(splitBinaryBytesMin, 1);
    const b = big(splitBinaryBytesMin + 5, 2);
    const small = big(splitBinaryBytesMin - 1, 3);
    const value = { id: 9, ok: true, result: { results: [{ data: a }, { data: small }, { data: b }], n: 1 } };
    const message = encodeMessage(value);
    expect(message.payloads[0]).toBe(a); // the caller's bytes, not a copy
    expect(message.payloads[1]).toBe(b);
    expect(message.payloadBytes).toBe(a.byteLength + b.byteLength);
    expect(message.head.byteLength).toBeLessThan(small.byteLength + 200); // the small one stays inline
    const stream = concat(messagePieces(message, 8 << 20));
    expect(stream.byteLength).toBe(4 + messageBodyBytes(message));
    const [frame] = new FrameDecoder(8 << 20).push(stream);
    const back = decodeFrame(frame as Frame) as typeof value;
    expect(back.id).toBe(9);
    expect(back.result.results.map((r) => r.data.byteLength)).toEqual([a.byteLength, small.byteLength, b.byteLength]);
    expect(new Uint8Array(back.result.results[0]?.data ?? [])).toEqual(a);
    expect(new Uint8Array(back.result.results[2]?.data ?? [])).toEqual(b);
    expect(back.result.results[0]?.data.buffer === frame?.payload?.buffer).toBe(true);
    expect(peekEnvelopeId(message.head)).toBe(9);
  });

  test("a message without large values is a plain frame that any MessagePack reader decodes", () => {
    const message = encodeMessage({ id: 3, op: "x", args: { data: big(100, 1) } });
    expect(message.payloads).toEqual([]);
    const back = decodeBody(message.head) as { id: number; args: { data: Uint8Array } };
    expect(back.id).toBe(3);
    expect(new Uint8Array(back.args.data)).toEqual(big(100, 1));
  });

  test("references out of bounds, out of order or not covering the payload are bad requests", () => {
    const ref = (offset: number, length: number) => {
      const bytes = new Uint8Array(10);
      bytes[0] = 0xd7;
      bytes[1] = payloadRefExtType;
      new DataView(bytes.buffer).setUint32(2, offset);
      new DataView(bytes.buffer).setUint32(6, length);
      return bytes;
    };
    const map1 = (value: Uint8Array) => concat([new Uint8Array([0x81, 0xa1, 0x64]), value]); // { d: value }
    const payload = new Uint8Array(100);
    const code = (run: () => unknown) => {
      try {
        run();
      } catch (error) {
        return (error as MictlanxError).code;
      }
      return "ok";
    };
    expect(code(() => decodeMessage(map1(ref(0, 100)), payload))).toBe("ok");
    expect(code(() => decodeMessage(map1(ref(0, 101)), payload))).toBe("bad_request");
    expect(code(() => decodeMessage(map1(ref(1, 99)), payload))).toBe("bad_request");
    expect(code(() => decodeMessage(map1(ref(0, 50)), payload))).toBe("bad_request"); // 50 bytes left over
    expect(code(() => decodeMessage(map1(ref(0xffff_fff0, 0x20)), payload))).toBe("bad_request");
    expect(code(() => decodeBody(map1(ref(0, 0))))).toBe("bad_request"); // a reference in a plain frame
  });

  test("peekEnvelopeId reads the id of heads that start with it, and nothing else", () => {
    for (const id of [1, 127, 128, 255, 256, 65_535, 65_536, 0xffff_ffff]) expect(peekEnvelopeId(encodeBody({ id, ok: true, result: {} }))).toBe(id);
    expect(peekEnvelopeId(encodeBody({ ok: true, id: 5 }))).toBeUndefined();
    expect(peekEnvelopeId(encodeBody([1, 2]))).toBeUndefined();
    expect(peekEnvelopeId(new Uint8Array(0))).toBeUndefined();
    expect(peekEnvelopeId(new Uint8Array([0x81, 0xa2, 0x69, 0x64]))).toBeUndefined(); // cut short
  });
});
