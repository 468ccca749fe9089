// A ball's chunk records, for a read that goes through them in order. A ball of many chunks
// lists only a first page with its metadata (`chunksNext` says where the rest start); the rest
// are asked for a page at a time as the read gets to them, and records already read are
// dropped, so memory stays at about a page however many chunks the ball has.
import type { ChunkRecordWire } from "../protocol/ball.ts";
import { CorruptError } from "../lib/errors.ts";

export type PageFetcher = (fromIndex: number) => Promise<{ chunks: ChunkRecordWire[]; next?: number }>;

export class ChunkDirectory {
  private readonly records = new Map<number, ChunkRecordWire>();
  /** Where the next page starts; undefined when every record is known. */
  private nextFrom: number | undefined;
  private fetching: Promise<void> | undefined;

  constructor(
    private readonly where: string,
    private readonly numChunks: number,
    first: ChunkRecordWire[],
    chunksNext: number | undefined,
    private readonly fetchPage: PageFetcher,
  ) {
    this.add(first, 0);
    this.nextFrom = chunksNext;
    const end = chunksNext ?? numChunks;
    if (first.length !== end) throw new CorruptError(`${where}: the metadata lists ${first.length} chunks where ${end} were expected`);
  }

  /** Whether every record came with the metadata (no page to ask for). */
  get complete(): boolean {
    return this.nextFrom === undefined && this.records.size === this.numChunks;
  }

  /** The record of chunk `index`, asking for pages until it is known; it is forgotten once taken. */
  async take(index: number): Promise<ChunkRecordWire> {
    for (;;) {
      const record = this.records.get(index);
      if (record) {
        this.records.delete(index);
        return record;
      }
      if (this.nextFrom === undefined || index < this.nextFrom) throw new CorruptError(`${this.where}: the metadata has no record of chunk ${index}`);
      this.fetching ??= this.fetchNext().finally(() => (this.fetching = undefined));
      await this.fetching;
    }
  }

  /** Every record, in order (for stat): asks for all the pages. */
  async all(): Promise<ChunkRecordWire[]> {
    const out: ChunkRecordWire[] = [];
    for (let index = 0; index < this.numChunks; index += 1) out.push(await this.take(index));
    return out;
  }

  private async fetchNext(): Promise<void> {
    const from = this.nextFrom;
    if (from === undefined) return;
    const page = await this.fetchPage(from);
    if (page.chunks.length === 0) throw new CorruptError(`${this.where}: an empty page of chunk records from ${from}`);
    this.add(page.chunks, from);
    this.nextFrom = page.next;
    if (page.next !== undefined && page.next !== from + page.chunks.length) throw new CorruptError(`${this.where}: a page of chunk records from ${from} says the next starts at ${page.next}`);
    if (page.next === undefined && from + page.chunks.length !== this.numChunks) {
      throw new CorruptError(`${this.where}: the chunk records end at ${from + page.chunks.length}, but the ball has ${this.numChunks}`);
    }
  }

  private add(chunks: ChunkRecordWire[], from: number): void {
    chunks.forEach((chunk, position) => {
      if (chunk.index !== from + position) throw new CorruptError(`${this.where}: chunk record ${from + position} has index ${chunk.index}`);
      if (chunk.index >= this.numChunks) throw new CorruptError(`${this.where}: a record of chunk ${chunk.index}, but the ball has ${this.numChunks}`);
      this.records.set(chunk.index, chunk);
    });
  }
}
