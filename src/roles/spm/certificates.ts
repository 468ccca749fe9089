// When each node's TLS certificate expires, as its heartbeats say (and the SPM's own), so that
// `status` and the TUI warn certificateExpiryWarnMs (30 days) before one does. In memory only:
// a node says it again every heartbeat. Bounded: a node not heard from for certificateForgetMs
// is forgotten, and at most certificatesTrackedMax are kept (src/lib/limits.ts).
import { limits, vssLimits } from "../../lib/limits.ts";
import type { Clock } from "../../lib/clock.ts";

interface Entry {
  role: string;
  id: string;
  notAfterMs: number;
  heardMonoMs: number;
}

const { certificatesTrackedMax, certificateForgetMs } = vssLimits;

export class CertificateExpiries {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly clock: Clock) {}

  note(role: string, id: string, notAfterMs: number | undefined): void {
    if (notAfterMs === undefined) return;
    const key = `${role} ${id}`;
    this.entries.delete(key);
    if (this.entries.size >= certificatesTrackedMax) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, { role, id, notAfterMs, heardMonoMs: this.clock.monoMs() });
  }

  list(): Array<{ role: string; id: string; notAfterMs: number }> {
    const now = this.clock.monoMs();
    for (const [key, entry] of this.entries) if (now - entry.heardMonoMs > certificateForgetMs) this.entries.delete(key);
    return [...this.entries.values()].map(({ role, id, notAfterMs }) => ({ role, id, notAfterMs })).sort((a, b) => a.notAfterMs - b.notAfterMs);
  }

  /** What to tell a person: one line per certificate expiring within the warning time (or expired). */
  warnings(wallNowMs: number): string[] {
    return this.list().flatMap(({ role, id, notAfterMs }) => {
      const leftMs = notAfterMs - wallNowMs;
      if (leftMs > limits.certificateExpiryWarnMs) return [];
      const when = new Date(notAfterMs).toISOString();
      if (leftMs <= 0) return [`${role} ${id}: its certificate expired on ${when}; issue a new one (mictlanx certs issue) and send it SIGHUP`];
      return [`${role} ${id}: its certificate expires in ${Math.floor(leftMs / 86_400_000)} days (${when}); renew it with mictlanx certs issue and send it SIGHUP`];
    });
  }
}
