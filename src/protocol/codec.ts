// MessagePack bodies. Plain maps (no msgpackr records) so any MessagePack library can speak
// the protocol; binary fields travel as `bin` and come back as Uint8Array.
//
// Large binary values (at least splitBinaryBytesMin bytes, e.g. a chunk's data) may travel
// beside the MessagePack instead of inside it, in a split frame (frame.ts): encodeMessage()
// writes each one into the head as a payload reference, a MessagePack extension
//
//   fixext 8, type payloadRefExtType:  offset u32be, length u32be   (into the frame's payload)
//
// and returns the bytes themselves, uncopied, for the payload. decodeMessage() turns each
// reference back into a view of the payload, after checking that it lies inside it; the
// references must tile the payload in order, with nothing left over. So the decoded message is
// the same value either way, and zod validates it the same way.
import { Packr, addExtension } from "msgpackr";
import { BadRequestError } from "../lib/errors.ts";
import { framePieces, splitFramePieces, splitHeadLengthBytes, type Frame } from "./frame.ts";

/** The MessagePack extension type of a payload reference. */
export const payloadRefExtType = 0x01;
/** Binary values this big or bigger travel in the payload of a split frame. */
export const splitBinaryBytesMin = 64 * 1024;

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false, mapsAsObjects: true });

interface Collector {
  pieces: Uint8Array[];
  bytes: number;
}
/** Set while encodeMessage packs: where large binary values go instead of the head. */
let collecting: Collector | null = null;
/** Set while decodeMessage unpacks: the payload references point into. */
let resolving: { payload: Uint8Array; used: number } | null = null;

type Allocate = (size: number) => { target: Uint8Array; position: number };

addExtension({
  Class: Uint8Array,
  type: payloadRefExtType,
  pack(value: Uint8Array, allocateForWrite: Allocate) {
    const length = value.byteLength;
    if (collecting !== null && length >= splitBinaryBytesMin) {
      const offset = collecting.bytes;
      collecting.pieces.push(value);
      collecting.bytes += length;
      const { target, position } = allocateForWrite(10);
      target[position] = 0xd7; // fixext 8
      target[position + 1] = payloadRefExtType;
      writeU32(target, position + 2, offset);
      writeU32(target, position + 6, length);
      return;
    }
    // As msgpackr writes binary itself: bin 8, bin 16 or bin 32, then the bytes.
    const headerBytes = length < 0x100 ? 2 : length < 0x10000 ? 3 : 5;
    const { target, position } = allocateForWrite(headerBytes + length);
    if (headerBytes === 2) {
      target[position] = 0xc4;
      target[position + 1] = length;
    } else if (headerBytes === 3) {
      target[position] = 0xc5;
      target[position + 1] = length >> 8;
      target[position + 2] = length & 0xff;
    } else {
      target[position] = 0xc6;
      writeU32(target, position + 1, length);
    }
    target.set(value, position + headerBytes);
  },
  unpack(data: Uint8Array) {
    if (resolving === null) throw new Error("a payload reference in a frame that has no payload");
    if (data.byteLength !== 8) throw new Error(`a payload reference of ${data.byteLength} bytes (expected 8)`);
    const offset = readU32(data, 0);
    const length = readU32(data, 4);
    const { payload } = resolving;
    if (offset !== resolving.used || length > payload.byteLength - offset) {
      throw new Error(`payload reference ${offset}+${length} does not follow on at ${resolving.used} inside a payload of ${payload.byteLength} bytes`);
    }
    resolving.used += length;
    return payload.subarray(offset, offset + length);
  },
} as unknown as Parameters<typeof addExtension>[0]);

function writeU32(target: Uint8Array, at: number, value: number): void {
  target[at] = value >>> 24;
  target[at + 1] = (value >>> 16) & 0xff;
  target[at + 2] = (value >>> 8) & 0xff;
  target[at + 3] = value & 0xff;
}

function readU32(data: Uint8Array, at: number): number {
  return (((data[at] as number) << 24) | ((data[at + 1] as number) << 16) | ((data[at + 2] as number) << 8) | (data[at + 3] as number)) >>> 0;
}

/** One plain MessagePack body, every binary value inside it. */
export function encodeBody(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decode one plain frame body. Garbage is a BadRequestError, never a crash. */
export function decodeBody(body: Uint8Array): unknown {
  try {
    return packr.unpack(body);
  } catch (error) {
    throw new BadRequestError(`frame body is not valid MessagePack (${(error as Error).message})`);
  }
}

/** A message ready for a frame: the head, and the large binary values that go beside it. */
export interface EncodedMessage {
  head: Uint8Array;
  /** The payload, in order; empty when nothing was large enough (send a plain frame). */
  payloads: Uint8Array[];
  payloadBytes: number;
}

/** Encode a message; binary values of splitBinaryBytesMin or more go to the payload, uncopied. */
export function encodeMessage(value: unknown): EncodedMessage {
  const collector: Collector = { pieces: [], bytes: 0 };
  collecting = collector;
  let head: Uint8Array;
  try {
    head = packr.pack(value);
  } finally {
    collecting = null;
  }
  return { head, payloads: collector.pieces, payloadBytes: collector.bytes };
}

/** Decode a split frame's head against its payload. Garbage or a reference out of bounds is a BadRequestError. */
export function decodeMessage(head: Uint8Array, payload: Uint8Array): unknown {
  const context = { payload, used: 0 };
  resolving = context;
  let value: unknown;
  try {
    value = packr.unpack(head);
  } catch (error) {
    throw new BadRequestError(`frame head is not valid MessagePack (${(error as Error).message})`);
  } finally {
    resolving = null;
  }
  if (context.used !== payload.byteLength) {
    throw new BadRequestError(`frame payload holds ${payload.byteLength} bytes but its head refers to ${context.used}`);
  }
  return value;
}

/** Decode one frame from FrameDecoder, plain or split. */
export function decodeFrame(frame: Frame): unknown {
  return frame.payload === undefined ? decodeBody(frame.head) : decodeMessage(frame.head, frame.payload);
}

/**
 * The `id` of an envelope whose head starts `{ id: <uint>, …` (as every envelope this code
 * encodes does), read without decoding the rest; undefined for anything else.
 */
export function peekEnvelopeId(head: Uint8Array): number | undefined {
  const first = head[0];
  if (first === undefined) return undefined;
  let at: number;
  if (first >= 0x81 && first <= 0x8f) at = 1;
  else if (first === 0xde) at = 3;
  else if (first === 0xdf) at = 5;
  else return undefined;
  if (head[at] !== 0xa2 || head[at + 1] !== 0x69 || head[at + 2] !== 0x64) return undefined; // fixstr "id"
  at += 3;
  const tag = head[at];
  if (tag === undefined || at >= head.byteLength) return undefined;
  if (tag <= 0x7f) return tag;
  if (tag === 0xcc && head.byteLength >= at + 2) return head[at + 1];
  if (tag === 0xcd && head.byteLength >= at + 3) return ((head[at + 1] as number) << 8) | (head[at + 2] as number);
  if (tag === 0xce && head.byteLength >= at + 5) return readU32(head, at + 1);
  return undefined;
}

/** The body length of the frame a message goes in (what frameBytesMax bounds). */
export function messageBodyBytes(message: EncodedMessage): number {
  return message.payloads.length === 0 ? message.head.byteLength : splitHeadLengthBytes + message.head.byteLength + message.payloadBytes;
}

/** The buffers to write for a message: a plain frame, or a split frame when it has a payload. */
export function messagePieces(message: EncodedMessage, frameBytesMax: number): Uint8Array[] {
  return message.payloads.length === 0 ? framePieces(message.head, frameBytesMax) : splitFramePieces(message.head, message.payloads, frameBytesMax);
}
