// Frames on the wire: a 4-byte big-endian prefix, then the body. Two kinds, told apart by the
// prefix's top bit:
//
//   plain:  0        4                         4+length
//           +--------+-------------------------+
//           | length |  body: MessagePack      |          top bit 0
//           +--------+-------------------------+
//
//   split:  0        4          8                   8+headBytes          4+length
//           +--------+----------+-------------------+--------------------+
//           | length | headBytes|  head: MessagePack |  payload: raw bytes |  top bit 1
//           +--------+----------+-------------------+--------------------+
//
// length (the low 31 bits) counts every byte after the prefix and is at most frameBytesMax. A
// split frame carries large binary values (a chunk's bytes) beside a small MessagePack head
// instead of inside it: the head holds a reference (offset, length) to each one (see codec.ts),
// so a sender writes the bytes it already has straight to the socket and a receiver takes them
// as a view of the frame, never copying them through MessagePack.
//
// Pure: no sockets here. The decoder takes bytes in any split and yields the same frames;
// a length prefix over frameBytesMax is refused before any of the body is buffered, and a
// frame's buffer grows with the bytes that arrive for it, not with what its prefix declares
// (a prefix of 9 MiB followed by 10 bytes holds 64 KiB, not 9 MiB).
import { assert } from "../lib/assert.ts";
import { BadRequestError, FrameTooLargeError, IncompatibleError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";

export const frameHeaderBytes = 4;
/** The prefix's top bit: the body is a split frame (head length, head, payload). */
export const frameSplitFlag = 0x8000_0000;
/** A split frame's body starts with the head's length (u32 big-endian). */
export const splitHeadLengthBytes = 4;
const lengthMask = 0x7fff_ffff;

/**
 * No mictlanx frame declares 16 MiB or more (frameBytesMax is 9 MiB), so a stream whose first
 * prefix does is another program's bytes, not a frame too large: text (an HTTP request, "GET "
 * is 1.2 GB as a length), a TLS record (0x16 0x03: 369 MiB), SSH. It is refused as such
 * (IncompatibleError, saying what it looks like), never read as a length. Below this, an
 * oversized prefix is a frame too large, as it always was.
 */
export const foreignPrefixLengthMin = 1 << 24;
/** Bytes of a foreign stream's start quoted in the refusal. */
const foreignQuoteBytes = 24;

/**
 * One decoded frame. A plain frame is its MessagePack body (`head`) and no payload; a split
 * frame is its head and its payload (possibly empty).
 */
export interface Frame {
  head: Uint8Array;
  payload: Uint8Array | undefined;
}

/**
 * Where a split frame's payload should land, asked once its head has arrived: a buffer of
 * exactly `payloadBytes` bytes (e.g. the caller's destination for a chunk it asked for), or
 * undefined for a fresh one.
 */
export type PayloadTarget = (head: Uint8Array, payloadBytes: number) => Uint8Array | undefined;

export function encodeFrameHeader(bodyBytes: number, frameBytesMax: number, split = false): Uint8Array {
  const header = new Uint8Array(frameHeaderBytes);
  writeFrameHeader(header, bodyBytes, frameBytesMax, split);
  return header;
}

function writeFrameHeader(into: Uint8Array, bodyBytes: number, frameBytesMax: number, split: boolean): void {
  assert(Number.isInteger(bodyBytes) && bodyBytes >= 0, "frame body length must be a non-negative integer");
  assert(frameBytesMax <= lengthMask, "frameBytesMax must fit in 31 bits");
  if (bodyBytes > frameBytesMax) throw new FrameTooLargeError(bodyBytes, frameBytesMax);
  new DataView(into.buffer, into.byteOffset, frameHeaderBytes).setUint32(0, (split ? frameSplitFlag : 0) + bodyBytes, false);
}

/**
 * Bodies up to this size are copied behind their header and sent as one buffer: one write
 * system call per message instead of two. Larger bodies go as header then body, since a
 * second system call costs less than copying megabytes.
 */
export const frameCoalesceBytesMax = 64 * 1024;

/** The buffers to write for one plain frame: one for a small body, header and body for a large one. */
export function framePieces(body: Uint8Array, frameBytesMax: number): Uint8Array[] {
  return body.byteLength <= frameCoalesceBytesMax ? [encodeFrame(body, frameBytesMax)] : [encodeFrameHeader(body.byteLength, frameBytesMax), body];
}

/** One plain frame as a single buffer (header + body). */
export function encodeFrame(body: Uint8Array, frameBytesMax: number): Uint8Array {
  const frame = new Uint8Array(frameHeaderBytes + body.byteLength);
  writeFrameHeader(frame, body.byteLength, frameBytesMax, false);
  frame.set(body, frameHeaderBytes);
  return frame;
}

/**
 * The buffers to write for one split frame: prefix, head length and head in one small buffer,
 * then the payload pieces as they are (not copied; they must not change until written).
 */
export function splitFramePieces(head: Uint8Array, payloads: readonly Uint8Array[], frameBytesMax: number): Uint8Array[] {
  let payloadBytes = 0;
  for (const piece of payloads) payloadBytes += piece.byteLength;
  const first = new Uint8Array(frameHeaderBytes + splitHeadLengthBytes + head.byteLength);
  writeFrameHeader(first, splitHeadLengthBytes + head.byteLength + payloadBytes, frameBytesMax, true);
  new DataView(first.buffer).setUint32(frameHeaderBytes, head.byteLength, false);
  first.set(head, frameHeaderBytes + splitHeadLengthBytes);
  return [first, ...payloads.filter((piece) => piece.byteLength > 0)];
}

/**
 * A frame at least this big that arrives whole inside one read is handed on as a view of that
 * read's buffer instead of being copied out of it. Smaller ones are copied, so that a small
 * request kept by a slow handler does not pin a whole read buffer (up to 512 KiB in Bun).
 */
export const frameViewBytesMin = 64 * 1024;
/** …and only when the read's buffer is at most this many times the frame's size. */
export const frameViewPinRatioMax = 4;

const enum State {
  Prefix,
  Body,
  HeadLength,
  Head,
  Payload,
}

const empty = new Uint8Array(0);

/**
 * Incremental frame decoder. push() bytes as they arrive; it returns the frames completed by
 * them. Memory held is at most one partial frame (≤ frameBytesMax) plus one partial prefix,
 * and for a partial frame at most frameBufferGrowStartBytes or 1/frameBufferWholeAfterRatio
 * times the bytes that have arrived for it, whichever is more (see `grow`).
 * After a FrameTooLargeError (or an IncompatibleError for a stream that starts with another
 * program's bytes, or a split frame whose head length does not fit it) the stream is
 * unusable (the framing is lost): close the connection.
 *
 * push() may return views of the buffer it was given (a large body or payload that arrived
 * whole): the caller must hand it buffers it will not reuse, as Bun's socket `data` buffers are.
 * A split frame's payload goes where `payloadTarget` says, if it says.
 */
export class FrameDecoder {
  private readonly frameBytesMax: number;
  private readonly payloadTarget: PayloadTarget | undefined;
  private state = State.Prefix;
  /** The prefix or a split frame's head length, while it is incomplete. */
  private readonly word = new Uint8Array(4);
  private wordFilled = 0;
  /** The plain body, the split head, or the payload being filled (it grows as bytes arrive). */
  private buffer: Uint8Array = empty;
  private filled = 0;
  /** The length the body, head or payload being filled will have: `buffer` grows up to it. */
  private expected = 0;
  /** Split frame: bytes after its head length, then its payload's length. */
  private splitBytes = 0;
  private head: Uint8Array = empty;
  /** The payload goes to a target that was abandoned: count its bytes, keep none, yield nothing. */
  private discarding = false;
  private broken = false;
  /** No frame has started yet: the next prefix is the stream's first bytes. */
  private atStreamStart = true;

  constructor(frameBytesMax: number, options: { payloadTarget?: PayloadTarget } = {}) {
    assert(frameBytesMax > 0 && frameBytesMax <= lengthMask, "frameBytesMax must be positive and fit in 31 bits");
    this.frameBytesMax = frameBytesMax;
    this.payloadTarget = options.payloadTarget;
  }

  /** Bytes allocated for the frame being filled (its buffer's size, which grows as bytes arrive). */
  get allocatedBytes(): number {
    return this.buffer.byteLength + this.head.byteLength;
  }

  /** Bytes held for a frame not yet complete (past its prefix). */
  get bufferedBytes(): number {
    switch (this.state) {
      case State.Prefix:
        return this.wordFilled;
      case State.Body:
        return this.filled;
      case State.HeadLength:
        return this.wordFilled;
      case State.Head:
        return splitHeadLengthBytes + this.filled;
      case State.Payload:
        return splitHeadLengthBytes + this.head.byteLength + this.filled;
    }
  }

  /**
   * The payload being filled into `target` (from payloadTarget) is no longer wanted (its
   * request timed out): the rest of it is read and dropped, and its frame is not yielded, so
   * nothing writes into `target` any more.
   */
  abandonPayload(target: Uint8Array): void {
    if (this.state === State.Payload && this.buffer === target) this.discarding = true;
  }

  push(bytes: Uint8Array): Frame[] {
    assert(!this.broken, "FrameDecoder used after a framing error");
    const frames: Frame[] = [];
    const end = bytes.byteLength;
    let at = 0;
    for (;;) {
      switch (this.state) {
        case State.Prefix: {
          if (at === end) return frames;
          let word: number;
          let prefix: Uint8Array;
          if (this.wordFilled === 0 && end - at >= 4) {
            word = readU32(bytes, at);
            prefix = bytes.subarray(at, at + 4);
            at += 4;
          } else {
            at = this.fillWord(bytes, at);
            if (this.wordFilled < 4) return frames;
            word = readU32(this.word, 0);
            prefix = this.word;
            this.wordFilled = 0;
          }
          const length = word & lengthMask;
          if (length > this.frameBytesMax) {
            this.broken = true;
            if (this.atStreamStart && length >= foreignPrefixLengthMin) throw foreignStream(prefix, bytes.subarray(at, at + foreignQuoteBytes), length, this.frameBytesMax);
            throw new FrameTooLargeError(length, this.frameBytesMax);
          }
          this.atStreamStart = false;
          if (word >= frameSplitFlag) {
            if (length < splitHeadLengthBytes) this.fail(`split frame of ${length} bytes has no head length`);
            this.splitBytes = length;
            this.state = State.HeadLength;
          } else if (length === 0) {
            frames.push({ head: empty, payload: undefined });
          } else if (end - at >= length && this.mayView(length, bytes)) {
            frames.push({ head: plainView(bytes, at, length), payload: undefined });
            at += length;
          } else {
            this.start(State.Body, length);
          }
          break;
        }
        case State.Body: {
          at = this.fill(bytes, at);
          if (this.filled < this.expected) return frames;
          frames.push({ head: this.buffer, payload: undefined });
          this.start(State.Prefix, 0);
          break;
        }
        case State.HeadLength: {
          if (at === end) return frames;
          at = this.fillWord(bytes, at);
          if (this.wordFilled < 4) return frames;
          this.wordFilled = 0;
          const headBytes = readU32(this.word, 0);
          const rest = this.splitBytes - splitHeadLengthBytes;
          if (headBytes > rest) this.fail(`split frame says its head is ${headBytes} bytes but the frame holds ${rest}`);
          this.splitBytes = rest - headBytes; // the payload's length from here on
          this.start(State.Head, headBytes); // copied: a small view would pin a whole read buffer
          break;
        }
        case State.Head: {
          at = this.fill(bytes, at);
          if (this.filled < this.expected) return frames;
          this.head = this.buffer;
          const payloadBytes = this.splitBytes;
          const target = payloadBytes === 0 ? undefined : this.payloadTarget?.(this.head, payloadBytes);
          if (target !== undefined && target.byteLength === payloadBytes) {
            this.start(State.Payload, payloadBytes, target);
          } else if (payloadBytes === 0) {
            frames.push({ head: this.head, payload: empty });
            this.head = empty;
            this.start(State.Prefix, 0);
          } else if (end - at >= payloadBytes && this.mayView(payloadBytes, bytes)) {
            frames.push({ head: this.head, payload: plainView(bytes, at, payloadBytes) });
            at += payloadBytes;
            this.head = empty;
            this.start(State.Prefix, 0);
          } else {
            this.start(State.Payload, payloadBytes);
          }
          break;
        }
        case State.Payload: {
          if (this.discarding) {
            const take = Math.min(this.expected - this.filled, end - at);
            this.filled += take;
            at += take;
          } else {
            at = this.fill(bytes, at);
          }
          if (this.filled < this.expected) return frames;
          if (!this.discarding) frames.push({ head: this.head, payload: this.buffer });
          this.discarding = false;
          this.head = empty;
          this.start(State.Prefix, 0);
          break;
        }
      }
    }
  }

  /** Begin filling `expected` bytes: into `target` when given (exactly that size), else into a buffer that grows. */
  private start(state: State, expected: number, target: Uint8Array = empty): void {
    assert(target === empty || target.byteLength === expected, "a payload target must be exactly the payload's size");
    this.state = state;
    this.expected = expected;
    this.buffer = target;
    this.filled = 0;
  }

  /** Copy what fits of `bytes` from `at` into the buffer being filled; returns the new `at`. */
  private fill(bytes: Uint8Array, at: number): number {
    const take = Math.min(this.expected - this.filled, bytes.byteLength - at);
    if (take === 0) return at;
    if (this.buffer.byteLength === 0 && take < this.expected && this.mayView(take, bytes)) {
      // The first large piece of a frame that goes on in the next read: kept as a view of this
      // read until then, and copied once into the buffer the next read's bytes grow.
      this.buffer = plainView(bytes, at, take);
    } else {
      if (this.filled + take > this.buffer.byteLength) this.grow(this.filled + take);
      this.buffer.set(take === bytes.byteLength ? bytes : bytes.subarray(at, at + take), this.filled);
    }
    this.filled += take;
    return at + take;
  }

  /**
   * Make room for `needed` bytes of the `expected`. The buffer is allocated whole once a share
   * of it (frameBufferWholeAfterRatio) has arrived, and doubles before that, from
   * frameBufferGrowStartBytes: so a prefix that declares 9 MiB and stops holds no more than
   * eight times what was really sent, while an 8 MiB chunk arriving in Bun's 512 KiB reads is
   * copied once, as when the buffer was allocated on the prefix: its first read is kept as a
   * view (see fill) and the whole buffer is allocated on the second.
   */
  private grow(needed: number): void {
    assert(needed <= this.expected && needed > this.buffer.byteLength, "grow past the expected length or without need");
    const whole = needed >= this.expected * limits.frameBufferWholeAfterRatio;
    const size = whole ? this.expected : Math.min(this.expected, Math.max(needed, 2 * this.buffer.byteLength, limits.frameBufferGrowStartBytes));
    const grown = allocate(size);
    if (this.filled > 0) grown.set(this.buffer.subarray(0, this.filled));
    this.buffer = grown;
  }

  private fillWord(bytes: Uint8Array, at: number): number {
    const take = Math.min(4 - this.wordFilled, bytes.byteLength - at);
    this.word.set(bytes.subarray(at, at + take), this.wordFilled);
    this.wordFilled += take;
    return at + take;
  }

  /** Large enough to be worth a view, and not so small that it would pin a much larger read. */
  private mayView(length: number, bytes: Uint8Array): boolean {
    return length >= frameViewBytesMin && length * frameViewPinRatioMax >= bytes.buffer.byteLength;
  }

  private fail(message: string): never {
    this.broken = true;
    throw new BadRequestError(`${message}; the stream cannot be read further`);
  }
}

/** The refusal of a stream that does not start with a frame: what it looks like, and why it is not read. */
function foreignStream(prefix: Uint8Array, after: Uint8Array, length: number, frameBytesMax: number): IncompatibleError {
  const start = new Uint8Array(prefix.byteLength + after.byteLength);
  start.set(prefix);
  start.set(after, prefix.byteLength);
  const looks = describeForeignStart(start.subarray(0, foreignQuoteBytes));
  return new IncompatibleError(`the stream does not start with a mictlanx frame: it looks like ${looks}, and as a length prefix its first bytes would declare ${length} bytes (a frame has at most ${frameBytesMax})`);
}

/** What a stream's first bytes look like, in words: an HTTP request or reply, TLS, SSH, text, else their hex. */
export function describeForeignStart(start: Uint8Array): string {
  if (start.byteLength >= 2 && (start[0] === 0x15 || start[0] === 0x16) && start[1] === 0x03) return "a TLS record (a TLS client or server)";
  const printable = start.every((byte) => (byte >= 0x20 && byte < 0x7f) || byte === 0x0d || byte === 0x0a || byte === 0x09);
  const quoted = JSON.stringify(new TextDecoder().decode(start));
  if (!printable) return `binary bytes ${Buffer.from(start).toString("hex")}`;
  if (/^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|CONNECT|TRACE) /.test(quoted.slice(1))) return `an HTTP request (${quoted})`;
  if (quoted.startsWith('"HTTP/')) return `an HTTP reply (${quoted})`;
  if (quoted.startsWith('"SSH-')) return `an SSH greeting (${quoted})`;
  return `text (${quoted})`;
}

function readU32(bytes: Uint8Array, at: number): number {
  return (((bytes[at] as number) << 24) | ((bytes[at + 1] as number) << 16) | ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number)) >>> 0;
}

/**
 * Not zeroed: every byte is written from the stream before the buffer is handed out. A plain
 * Uint8Array, never a Buffer: what is decoded from it (MessagePack `bin`) is a view of it, and
 * Buffer#slice makes a view where Uint8Array#slice makes the copy callers count on.
 */
function allocate(length: number): Uint8Array {
  return new Uint8Array(Buffer.allocUnsafeSlow(length).buffer, 0, length);
}

/** A plain Uint8Array view of part of `bytes` (Bun's socket reads are Buffers; see allocate). */
function plainView(bytes: Uint8Array, at: number, length: number): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset + at, length);
}
