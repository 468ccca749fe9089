// The access keys a router checks clients' proofs and grants against: records it asks the SPM
// for over its mTLS link (`key.lookup`), kept in memory only (never in a file), bounded, and
// refreshed so that a revocation reaches it within keyRevocationMs:
//
//   age < keyRefreshAfterMs    use the record
//   age < keyRevocationMs      use it, and ask the SPM again in the background
//   otherwise                  wait for the SPM's answer; if no SPM answers, keep using a record
//                              validated within keyOfflineTrustMs, then refuse (`unavailable`)
//
// An unknown key is remembered as unknown for the same time, so a client guessing ids costs
// the SPM one lookup per id per second at most.
import { UnavailableError, toMictlanxError } from "../../lib/errors.ts";
import { limits } from "../../lib/limits.ts";
import { assert } from "../../lib/assert.ts";
import type { KeyRecord, KeyVerifier } from "../../net/authorize.ts";

interface Entry {
  record: KeyRecord | undefined;
  /** performance.now() of the SPM's answer. */
  validatedMs: number;
  refreshing: Promise<KeyRecord | undefined> | null;
}

export class RouterKeys implements KeyVerifier {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly fetch: (accessKey: string) => Promise<KeyRecord | undefined>,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.entries.size;
  }

  async lookup(accessKey: string): Promise<KeyRecord | undefined> {
    const entry = this.entries.get(accessKey);
    if (!entry) return this.refresh(accessKey, undefined);
    this.entries.delete(accessKey); // most recently used last
    this.entries.set(accessKey, entry);
    const ageMs = this.now() - entry.validatedMs;
    if (ageMs < limits.keyRefreshAfterMs) return entry.record;
    if (ageMs < limits.keyRevocationMs) {
      this.refresh(accessKey, entry).catch(() => {}); // the next request past keyRevocationMs waits and says why
      return entry.record;
    }
    return this.refresh(accessKey, entry);
  }

  /** Forget every record (tests; a router that learns keys changed wholesale). */
  clear(): void {
    this.entries.clear();
  }

  private refresh(accessKey: string, entry: Entry | undefined): Promise<KeyRecord | undefined> {
    if (entry?.refreshing) return entry.refreshing;
    const refreshing = this.fetch(accessKey).then(
      (record) => {
        this.store(accessKey, record);
        return record;
      },
      (error: unknown) => {
        if (entry) entry.refreshing = null;
        const typed = toMictlanxError(error);
        if (typed.code !== "unavailable" && typed.code !== "timeout") throw typed;
        const ageMs = entry ? this.now() - entry.validatedMs : Infinity;
        if (entry && ageMs < limits.keyOfflineTrustMs) return entry.record;
        const seen = entry ? ` (last checked ${Math.round(ageMs / 1000)} s ago; a router trusts a key for ${limits.keyOfflineTrustMs / 1000} s without an SPM)` : "";
        throw new UnavailableError(`this router cannot check access key ${accessKey}: no SPM answers${seen}: ${typed.message}`);
      },
    );
    if (entry) entry.refreshing = refreshing;
    return refreshing;
  }

  private store(accessKey: string, record: KeyRecord | undefined): void {
    this.entries.delete(accessKey);
    if (this.entries.size >= limits.keyCacheEntriesMax) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(accessKey, { record, validatedMs: this.now(), refreshing: null });
    assert(this.entries.size <= limits.keyCacheEntriesMax, "router key cache past its bound");
  }
}
