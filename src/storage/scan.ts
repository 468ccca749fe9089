// Reading a shard record by record, for recovery on open and for rebuilding the index.
// Memory stays within a window (limits.shardScanWindowBytes) plus one record.
//
// What the scanner decides, from `from` to the end of the file:
// - a record whose header and data verify: reported.
// - a verified header whose data fails its checksum, with more bytes after it: skipped and
//   reported, never indexed. After the checkpoint it is most likely an unacknowledged write
//   torn by a crash (pages reach the disk in any order), and indexing it could shadow an older,
//   acknowledged version with garbage. Skipping is deterministic, so a rebuild makes the same
//   choice and the record can never win later.
// - a verified header whose record runs past the end of the file, or whose data is bad and ends
//   the file: a torn last write; `tailStart` says where to cut.
// - a header that does not verify: if no valid record follows anywhere later in the file, it is
//   a torn tail from a write that was never acknowledged, cut at `tailStart`. If a valid
//   record does follow, it is damage in the middle of the file: the bad bytes are skipped and
//   reported, and the scan resumes at that record. (A resync can in principle land on a record
//   stored as chunk data inside the damaged region; this only happens after mid-file header
//   damage, which is reported loudly.)
import { chunkChecksum } from "../lib/checksum.ts";
import { limits } from "../lib/limits.ts";
import { decodeHeader, isManifestKind, recordHeaderBytesMax, recordMagic, type DecodedHeader } from "./record.ts";
import type { ShardFile } from "./shard-file.ts";

export interface ScannedRecord {
  header: DecodedHeader;
  offset: number;
  /** The verified data of a manifest (small; valid only during the callback). Absent for chunks. */
  manifestData?: Uint8Array;
}

export interface ScanResult {
  /** End of the last record that belongs; the file should be cut here if it is longer. */
  tailStart: number;
  fileBytes: number;
  /** Offsets of records with an authentic header and bad data (skipped, never indexed). */
  corruptRecords: number[];
  skippedRegions: { from: number; to: number }[];
}

const magicBytes = new Uint8Array(new Uint32Array([recordMagic]).buffer);

/** A read-through window over a shard file. */
class Window {
  private start = 0;
  private bytes: Uint8Array = new Uint8Array(0);
  constructor(
    private readonly file: ShardFile,
    readonly fileBytes: number,
  ) {}

  /** Up to `length` bytes at `offset` (fewer only at the end of the file). */
  async at(offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(offset + length, this.fileBytes);
    if (offset >= this.start && end <= this.start + this.bytes.length) {
      return this.bytes.subarray(offset - this.start, end - this.start);
    }
    const want = Math.min(Math.max(end - offset, limits.shardScanWindowBytes), this.fileBytes - offset);
    this.bytes = await this.file.read(offset, want);
    this.start = offset;
    return this.bytes.subarray(0, Math.min(end - offset, this.bytes.length));
  }
}

type Probe = { kind: "ok" | "data_bad" | "past_end"; header: DecodedHeader; data?: Uint8Array } | { kind: "bad" };

async function probe(w: Window, offset: number): Promise<Probe> {
  const head = await w.at(offset, recordHeaderBytesMax);
  const decoded = decodeHeader(head);
  if (!decoded.ok) return { kind: "bad" };
  const { header } = decoded;
  if (offset + header.recordBytes > w.fileBytes) return { kind: "past_end", header };
  const data = await w.at(offset + header.headerBytes, header.dataBytes);
  const ok = data.length === header.dataBytes && chunkChecksum(data) === header.dataChecksum;
  return { kind: ok ? "ok" : "data_bad", header, ...(isManifestKind(header.kind) ? { data } : {}) };
}

/** The next offset after `from` where a fully valid record starts, or -1. */
async function resync(w: Window, from: number): Promise<number> {
  let at = from;
  while (at < w.fileBytes) {
    const view = await w.at(at, limits.shardScanWindowBytes);
    const hit = Buffer.from(view.buffer, view.byteOffset, view.byteLength).indexOf(magicBytes);
    if (hit < 0) {
      if (view.length < magicBytes.length) return -1;
      at += view.length - (magicBytes.length - 1); // a magic may straddle windows
      continue;
    }
    const candidate = at + hit;
    if ((await probe(w, candidate)).kind === "ok") return candidate;
    at = candidate + 1;
  }
  return -1;
}

export async function scanShard(
  file: ShardFile,
  from: number,
  onRecord: (r: ScannedRecord) => Promise<void> | void,
): Promise<ScanResult> {
  const w = new Window(file, file.fileBytes());
  const result: ScanResult = { tailStart: from, fileBytes: w.fileBytes, corruptRecords: [], skippedRegions: [] };
  let at = from;
  while (at < w.fileBytes) {
    const p = await probe(w, at);
    if (p.kind === "ok") await onRecord({ header: p.header, offset: at, ...(p.data ? { manifestData: p.data } : {}) });
    if (p.kind === "data_bad" && at + p.header.recordBytes < w.fileBytes) result.corruptRecords.push(at);
    if (p.kind === "ok" || (p.kind === "data_bad" && at + p.header.recordBytes < w.fileBytes)) {
      at += p.header.recordBytes;
      result.tailStart = at;
      continue;
    }
    // An authentic header whose record is cut short or ends the file with bad data: the last
    // write was torn. Nothing can follow it, and searching its data could find a record that a
    // caller stored as chunk bytes, so stop here.
    if (p.kind !== "bad") break;
    const next = await resync(w, at + 1);
    if (next < 0) break; // torn tail: tailStart stays at the last good record's end
    result.skippedRegions.push({ from: at, to: next });
    at = next;
  }
  return result;
}
