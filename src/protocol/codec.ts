// MessagePack bodies. Plain maps (no msgpackr records) so any MessagePack library can speak
// the protocol; binary fields travel as `bin` and come back as Uint8Array.
import { Packr } from "msgpackr";
import { BadRequestError } from "../lib/errors.ts";

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false, mapsAsObjects: true });

export function encodeBody(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decode one frame body. Garbage is a BadRequestError, never a crash. */
export function decodeBody(body: Uint8Array): unknown {
  try {
    return packr.unpack(body);
  } catch (error) {
    throw new BadRequestError(`frame body is not valid MessagePack (${(error as Error).message})`);
  }
}
