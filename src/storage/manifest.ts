// A manifest record's data: what the engine needs to order a ball's manifests, then the ball's
// metadata, opaque here (the peer role writes and reads it; docs/recovery.md says what it holds).
//
//   offset  size  field
//   ------  ----  -----------------------------------------------------------------------------
//        0     8  generation  u64 LE, 1..2^53-1: the SPM's commit order (higher = later)
//        8     …  body        the ball's metadata (MessagePack, written by the peer role)
//
// The record around it (record.ts, kind manifest or manifestTombstone) names the bucket, the
// key and the object id (its `ball` field), and its data checksum covers generation and body.
import { assert } from "../lib/assert.ts";
import { manifestDataBytesMax, manifestDataBytesMin } from "./record.ts";

export const manifestGenerationBytes = manifestDataBytesMin;
/** The most body bytes one manifest may carry. */
export const manifestBodyBytesMax = manifestDataBytesMax - manifestGenerationBytes;

export function encodeManifestData(generation: number, body: Uint8Array): Uint8Array {
  assert(Number.isSafeInteger(generation) && generation >= 1, `manifest generation ${generation}`);
  assert(body.byteLength <= manifestBodyBytesMax, `manifest body of ${body.byteLength} bytes`);
  const out = new Uint8Array(manifestGenerationBytes + body.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(generation), true);
  out.set(body, manifestGenerationBytes);
  return out;
}

/** The generation a manifest's data starts with; undefined when it is not one this build writes. */
export function manifestGeneration(data: Uint8Array): number | undefined {
  if (data.byteLength < manifestGenerationBytes || data.byteLength > manifestDataBytesMax) return undefined;
  const generation = new DataView(data.buffer, data.byteOffset, data.byteLength).getBigUint64(0, true);
  if (generation < 1n || generation > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return Number(generation);
}

export function manifestBody(data: Uint8Array): Uint8Array {
  return data.subarray(manifestGenerationBytes);
}
