// The open shard files of one store and which one takes appends.
import { assert } from "../lib/assert.ts";
import type { ShardFile } from "./shard-file.ts";

export class ShardSet {
  private readonly files = new Map<number, ShardFile>();
  private activeFile: ShardFile | undefined;

  add(file: ShardFile): void {
    assert(!this.files.has(file.id), `shard ${file.id} opened twice`);
    this.files.set(file.id, file);
  }

  setActive(file: ShardFile): void {
    assert(this.files.get(file.id) === file, `active shard ${file.id} is not in the set`);
    assert(!this.activeFile || file.id > this.activeFile.id, "shard ids only grow");
    this.activeFile = file;
  }

  get active(): ShardFile {
    assert(this.activeFile, "no active shard");
    return this.activeFile;
  }

  get(id: number): ShardFile | undefined {
    return this.files.get(id);
  }

  ids(): number[] {
    return [...this.files.keys()].sort((a, b) => a - b);
  }

  maxId(): number {
    return Math.max(0, ...this.files.keys());
  }

  /** Stop handing out the shard; its fd closes once its readers finish. */
  retire(id: number): ShardFile | undefined {
    const file = this.files.get(id);
    assert(file !== this.activeFile, `retiring the active shard ${id}`);
    this.files.delete(id);
    file?.retire();
    return file;
  }

  /** Bytes of shard files on disk (whole records; a torn tail is cut on open). */
  usedBytes(): number {
    let total = 0;
    for (const f of this.files.values()) total += f.size;
    return total;
  }

  closeAll(): void {
    for (const f of this.files.values()) f.close();
    this.files.clear();
    this.activeFile = undefined;
  }
}
