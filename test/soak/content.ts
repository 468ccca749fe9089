// Payloads the soak writes: fully determined by a seed and a size, so a ledger keeps only
// (size, sha256) per write and the bytes can be made again to show where a read differs.
import { mulberry32, randomBytes } from "../support/random.ts";
import type { BallState } from "./ledger.ts";

export function payload(contentSeed: number, size: number): Uint8Array {
  return randomBytes(mulberry32(contentSeed), size);
}

export function sha256Hex(bytes: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
}

export function stateOf(bytes: Uint8Array): BallState {
  return { kind: "present", size: bytes.byteLength, sha256: sha256Hex(bytes) };
}

/** Where two payloads first differ, for a failure message. */
export function firstDifference(expected: Uint8Array, got: Uint8Array): string {
  const shorter = Math.min(expected.byteLength, got.byteLength);
  for (let i = 0; i < shorter; i += 1) if (expected[i] !== got[i]) return `first difference at byte ${i} of ${expected.byteLength}`;
  return expected.byteLength === got.byteLength ? "identical" : `the same for ${shorter} bytes, then ${got.byteLength} bytes back for ${expected.byteLength}`;
}
