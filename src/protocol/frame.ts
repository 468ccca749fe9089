// Frames on the wire: a 4-byte big-endian body length, then the body (MessagePack).
//
//   0       4                    4+length
//   +-------+--------------------+
//   | u32be |  body (msgpack)    |
//   +-------+--------------------+
//
// Pure: no sockets here. The decoder takes bytes in any split and yields the same frames;
// a length prefix over frameBytesMax is refused before any of the body is buffered.
import { assert } from "../lib/assert.ts";
import { FrameTooLargeError } from "../lib/errors.ts";

export const frameHeaderBytes = 4;

export function encodeFrameHeader(bodyBytes: number, frameBytesMax: number): Uint8Array {
  assert(Number.isInteger(bodyBytes) && bodyBytes >= 0, "frame body length must be a non-negative integer");
  if (bodyBytes > frameBytesMax) throw new FrameTooLargeError(bodyBytes, frameBytesMax);
  const header = new Uint8Array(frameHeaderBytes);
  new DataView(header.buffer).setUint32(0, bodyBytes, false);
  return header;
}

/**
 * Bodies up to this size are copied behind their header and sent as one buffer: one write
 * system call per message instead of two. Larger bodies go as header then body, since a
 * second system call costs less than copying megabytes.
 */
export const frameCoalesceBytesMax = 64 * 1024;

/** The buffers to write for one frame: one for a small body, header and body for a large one. */
export function framePieces(body: Uint8Array, frameBytesMax: number): Uint8Array[] {
  return body.byteLength <= frameCoalesceBytesMax ? [encodeFrame(body, frameBytesMax)] : [encodeFrameHeader(body.byteLength, frameBytesMax), body];
}

/** One frame as a single buffer (header + body). */
export function encodeFrame(body: Uint8Array, frameBytesMax: number): Uint8Array {
  const frame = new Uint8Array(frameHeaderBytes + body.byteLength);
  frame.set(encodeFrameHeader(body.byteLength, frameBytesMax), 0);
  frame.set(body, frameHeaderBytes);
  return frame;
}

/**
 * Incremental frame decoder. push() bytes as they arrive; it returns the bodies completed by
 * them. Memory held is at most one partial frame (≤ frameBytesMax) plus one partial header.
 * After a FrameTooLargeError the stream is unusable (the framing is lost): close the connection.
 */
export class FrameDecoder {
  private readonly frameBytesMax: number;
  private header = new Uint8Array(frameHeaderBytes);
  private headerFilled = 0;
  private body: Uint8Array | null = null;
  private bodyFilled = 0;
  private broken = false;

  constructor(frameBytesMax: number) {
    assert(frameBytesMax > 0, "frameBytesMax must be positive");
    this.frameBytesMax = frameBytesMax;
  }

  /** Bytes held for a frame not yet complete. */
  get bufferedBytes(): number {
    return this.headerFilled + this.bodyFilled;
  }

  push(bytes: Uint8Array): Uint8Array[] {
    assert(!this.broken, "FrameDecoder used after a framing error");
    const frames: Uint8Array[] = [];
    let at = 0;
    while (at < bytes.byteLength) {
      if (this.body === null) {
        at = this.fillHeader(bytes, at);
        const started = this.body as Uint8Array | null; // fillHeader may have started a body
        if (started !== null && started.byteLength === 0) frames.push(this.takeBody());
        continue;
      }
      const take = Math.min(this.body.byteLength - this.bodyFilled, bytes.byteLength - at);
      this.body.set(bytes.subarray(at, at + take), this.bodyFilled);
      this.bodyFilled += take;
      at += take;
      if (this.bodyFilled === this.body.byteLength) frames.push(this.takeBody());
    }
    return frames;
  }

  private fillHeader(bytes: Uint8Array, at: number): number {
    const take = Math.min(frameHeaderBytes - this.headerFilled, bytes.byteLength - at);
    this.header.set(bytes.subarray(at, at + take), this.headerFilled);
    this.headerFilled += take;
    if (this.headerFilled < frameHeaderBytes) return at + take;
    const length = new DataView(this.header.buffer).getUint32(0, false);
    if (length > this.frameBytesMax) {
      this.broken = true;
      throw new FrameTooLargeError(length, this.frameBytesMax);
    }
    this.body = new Uint8Array(length);
    this.bodyFilled = 0;
    this.headerFilled = 0;
    return at + take;
  }

  private takeBody(): Uint8Array {
    const body = this.body;
    assert(body !== null && this.bodyFilled === body.byteLength, "takeBody on an incomplete frame");
    this.body = null;
    this.bodyFilled = 0;
    return body;
  }
}
