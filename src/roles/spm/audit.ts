// The audit log's side of the SPM: who a request came from, and appending the record of an
// admin operation or a delete. A delete and its record commit in one transaction of the group
// commit (`write`); an op that writes through another part (the registry's drain and remove)
// has its record appended once it is done, before the reply (`around`). A failed op is
// recorded too, with its error code, in a write of its own.
import type { CatalogStore, GroupWrite } from "../../catalog/index.ts";
import type { Handlers } from "../../net/server.ts";
import type { Clock } from "../../lib/clock.ts";
import { toMictlanxError } from "../../lib/errors.ts";
import { limits } from "../../lib/limits.ts";
import type { AuditActor } from "../../protocol/keys.ts";
import type { SpmOps } from "../../protocol/spm.ts";
import type { WriteBatcher } from "./write-batcher.ts";

/** Who made a request, as the net layer says once connections prove a key or a node certificate. */
export type Principal = { kind: "key"; accessKey: string } | { kind: "node"; role: string; id: string } | { kind: "anonymous" };

/** What the audit log reads of a request's context: `remote` today, and `principal` once the net layer sets it. */
export interface AuditContext {
  remote: string;
  principal?: Principal;
}

/** Who is written in a record: the access key (null when anonymous, insecure or a node) and the address. */
export type Actor = { accessKey: string | null; remote: string };

/** The caller of this request. The one place the principal is read. */
export function actorOf(context: AuditContext): Actor {
  const principal = context.principal;
  return { accessKey: principal?.kind === "key" ? principal.accessKey : null, remote: context.remote };
}

/**
 * Who a delete is for: the client a router names in the op's `actor`, else the caller itself.
 * Only a router speaks for a client: a caller known to be a key holder or another kind of node
 * is recorded as itself whatever it claims. A caller the net layer does not name (today, and
 * an insecure VSS) is taken at its word: it could do anything anyway.
 */
export function deleteActorOf(context: AuditContext, claimed: AuditActor | undefined): Actor {
  if (claimed === undefined) return actorOf(context);
  const principal = context.principal;
  const mayClaim = principal === undefined || principal.kind === "anonymous" || (principal.kind === "node" && principal.role === "router");
  return mayClaim ? { accessKey: claimed.accessKey ?? null, remote: claimed.remote } : actorOf(context);
}

export interface AuditEntry {
  actor: Actor;
  /** The op's name. */
  action: string;
  target: string;
}

export class AuditTrail {
  constructor(
    private readonly deps: {
      catalog: CatalogStore;
      writes: WriteBatcher;
      clock: Clock;
      /** A record that could not be written is said in the event log, never dropped silently. */
      event: (kind: string, message: string) => void;
    },
  ) {}

  /**
   * `write` (catalog calls only) in the group commit with its record in the same transaction,
   * its outcome from what it returned (`outcomeOf`: e.g. not_found for a delete of nothing).
   * If it throws, it is rolled back and the failure is recorded in a write of its own.
   */
  async write<T>(entry: AuditEntry, write: GroupWrite<T>, outcomeOf: (value: T) => string = () => "ok"): Promise<T> {
    const atMs = this.deps.clock.wallMs(); // taken once: the batcher may run the write again
    try {
      return await this.deps.writes.submit(async (tx) => {
        const value = await write(tx);
        await tx.appendAudit(recordOf(entry, atMs, outcomeOf(value)));
        return value;
      });
    } catch (error) {
      await this.append(entry, atMs, toMictlanxError(error).code);
      throw error;
    }
  }

  /** An op that writes through another part: run it, then record how it ended (before its reply). */
  async around<T>(entry: AuditEntry, work: () => Promise<T>): Promise<T> {
    const atMs = this.deps.clock.wallMs();
    let value: T;
    try {
      value = await work();
    } catch (error) {
      await this.append(entry, atMs, toMictlanxError(error).code);
      throw error;
    }
    await this.append(entry, atMs, "ok");
    return value;
  }

  /** A record on its own. The op has happened (or failed) already, so a record that cannot be written is an event, not the op's error. */
  private async append(entry: AuditEntry, atMs: number, outcome: string): Promise<void> {
    try {
      await this.deps.writes.submit((tx) => tx.appendAudit(recordOf(entry, atMs, outcome)));
    } catch (error) {
      this.deps.event("audit_lost", `the audit record of ${entry.action} ${entry.target} (${outcome}) could not be written: ${toMictlanxError(error).message}`);
    }
  }
}

function recordOf(entry: AuditEntry, atMs: number, outcome: string) {
  return { atMs, accessKey: entry.actor.accessKey, remote: entry.actor.remote, action: entry.action, target: entry.target, outcome };
}

/** `audit.list`: a page of the log, newest first. Needs admin (enforced by the net layer). */
export function auditHandlers(catalog: CatalogStore): Pick<Handlers<SpmOps>, "audit.list"> {
  return {
    "audit.list": ({ before, limit }) => catalog.listAudit({ ...(before === undefined ? {} : { before }), limit: limit ?? limits.auditPageMax }),
  };
}
