// Cuts any byte source into chunks of exactly chunkSize bytes (the last may be shorter), holding
// at most one chunk plus one incoming piece: constant memory whatever the payload size.
import { assert } from "../lib/assert.ts";

export type ByteSource = Uint8Array | Blob | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/** How many chunks `source` will make, when its size is known up front (bytes, a file); else undefined. */
export function chunkCountOf(source: ByteSource, chunkSize: number): number | undefined {
  const size = source instanceof Uint8Array ? source.byteLength : source instanceof Blob ? source.size : undefined;
  return size === undefined ? undefined : Math.ceil(size / chunkSize);
}

export async function* chunks(source: ByteSource, chunkSize: number): AsyncGenerator<Uint8Array> {
  assert(chunkSize > 0, "chunkSize must be positive");
  if (source instanceof Uint8Array) {
    for (let at = 0; at < source.byteLength; at += chunkSize) yield source.subarray(at, Math.min(at + chunkSize, source.byteLength));
    return;
  }
  const pieces: AsyncIterable<Uint8Array> = source instanceof Blob ? source.stream() : (source as AsyncIterable<Uint8Array>);
  let buffer = new Uint8Array(chunkSize);
  let filled = 0;
  for await (const piece of pieces) {
    let at = 0;
    while (at < piece.byteLength) {
      const take = Math.min(chunkSize - filled, piece.byteLength - at);
      buffer.set(piece.subarray(at, at + take), filled);
      filled += take;
      at += take;
      if (filled === chunkSize) {
        yield buffer;
        buffer = new Uint8Array(chunkSize); // the consumer may still hold the last one
        filled = 0;
      }
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled);
}

export interface NumberedChunk {
  index: number;
  data: Uint8Array;
  /** The payload's last chunk (known by looking one chunk ahead). */
  final: boolean;
}

/** Chunks with their index and whether each is the last: holds one chunk back to know. */
export async function* numbered(pieces: AsyncIterable<Uint8Array>): AsyncGenerator<NumberedChunk> {
  const iterator = pieces[Symbol.asyncIterator]();
  let finished = false;
  try {
    let current = await iterator.next();
    let index = 0;
    while (!current.done) {
      const next = await iterator.next();
      yield { index, data: current.value, final: next.done === true };
      index += 1;
      current = next;
    }
    finished = true;
  } finally {
    if (!finished) await iterator.return?.(undefined); // stopped early: close the source
  }
}
