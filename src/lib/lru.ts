// A small LRU map bounded by entry count and, optionally, by a size function (bytes).
export class Lru<K, V> {
  private readonly map = new Map<K, V>();
  private sizeTotal = 0;

  constructor(
    private readonly entriesMax: number,
    private readonly sizeMax = Number.POSITIVE_INFINITY,
    private readonly sizeOf: (value: V) => number = () => 0,
  ) {}

  get size(): number {
    return this.map.size;
  }

  get bytes(): number {
    return this.sizeTotal;
  }

  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, value);
    return value;
  }

  set(key: K, value: V): void {
    this.delete(key);
    const size = this.sizeOf(value);
    if (size > this.sizeMax) return; // never cache what alone passes the bound
    this.map.set(key, value);
    this.sizeTotal += size;
    while (this.map.size > this.entriesMax || this.sizeTotal > this.sizeMax) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      this.delete(oldest.value);
    }
  }

  delete(key: K): void {
    const value = this.map.get(key);
    if (value === undefined) return;
    this.sizeTotal -= this.sizeOf(value);
    this.map.delete(key);
  }

  /** The keys, least recently used first (a copy: deleting while walking it is safe). */
  keys(): K[] {
    return [...this.map.keys()];
  }

  clear(): void {
    this.map.clear();
    this.sizeTotal = 0;
  }
}
