// Access keys on the SPM: the key.* ops and the first admin key of a VSS.
//
// Who may call what (the net layer enforces it, from the connection's proven key or node
// certificate; these handlers do not check):
//   admin only        key.create, key.list, key.revoke, audit.list,
//                     peer.drain, peer.undrain, peer.remove, vss.status (peers.list: admin
//                     or one of the VSS's nodes)
//   routers only      key.lookup (it hands out secrets: a router's certificate, never a
//                     client's key, admin or not)
//   routers (actor)   ball.delete, ball.deletePrefix, bucket.delete carry the client's identity
//                     in `actor` for the audit log; the router checked the client's grants
//
// The first admin key: when the catalog holds no key at all (a new catalog, or one from a build
// before keys), the SPM imports the key in its credentials file if one is there (`mictlanx up`
// writes it first), or makes one and writes the file. The file is written before the key is
// stored, so a crash between the two leaves a file the next start imports; once the catalog
// holds a key the file is never written again.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";
import type { CatalogStore } from "../../catalog/index.ts";
import type { Handlers } from "../../net/server.ts";
import { newAccessKeyId, newSecretKey } from "../../lib/access-keys.ts";
import type { Clock } from "../../lib/clock.ts";
import { writeFileDurable } from "../../lib/durable-file.ts";
import { NotFoundError, UsageError } from "../../lib/errors.ts";
import { actions, normalizeGrants, type Grant } from "../../lib/grants.ts";
import { limits } from "../../lib/limits.ts";
import { accessKeyId, secretKey } from "../../protocol/keys.ts";
import type { SpmOps } from "../../protocol/spm.ts";
import { actorOf, type AuditTrail } from "./audit.ts";
import type { WriteBatcher } from "./write-batcher.ts";

/** An admin key may do everything: every action on every bucket, and admin. */
export const adminGrants: Grant[] = [{ bucket: "*", allow: [...actions] }];

type KeyOp = "key.create" | "key.list" | "key.revoke" | "key.lookup";

export function keyHandlers(deps: { catalog: CatalogStore; audit: AuditTrail; clock: Clock }): Pick<Handlers<SpmOps>, KeyOp> {
  const { catalog, audit, clock } = deps;
  return {
    "key.create": async ({ grants, admin }, context) => {
      const key = { accessKey: newAccessKeyId(), secretKey: newSecretKey(), grants: normalizeGrants(grants), admin, createdMs: clock.wallMs() };
      const made = await audit.write({ actor: actorOf(context), action: "key.create", target: key.accessKey }, (tx) => tx.createAccessKey(key));
      return { accessKey: made.accessKey, secretKey: key.secretKey, grants: made.grants, admin: made.admin, createdMs: made.createdMs };
    },
    "key.list": async ({ after, limit }) => {
      const page = await catalog.listAccessKeys({ ...(after === undefined ? {} : { after }), limit: limit ?? limits.accessKeysPageMax });
      const keys = page.keys.map(({ accessKey, grants, admin, createdMs, revokedMs }) => ({ accessKey, grants, admin, createdMs, revoked: revokedMs !== undefined }));
      return page.next === undefined ? { keys } : { keys, next: page.next };
    },
    "key.revoke": async ({ accessKey }, context) => {
      const revokedMs = clock.wallMs();
      const entry = { actor: actorOf(context), action: "key.revoke", target: accessKey };
      const revoked = await audit.write(entry, (tx) => tx.revokeAccessKey(accessKey, revokedMs), (found) => (found ? "ok" : "not_found"));
      if (!revoked) throw new NotFoundError(`no access key ${accessKey}; mictlanx key ls lists them`);
      return { accessKey, revoked: true as const };
    },
    "key.lookup": async ({ accessKey }) => {
      const key = await catalog.getAccessKey(accessKey);
      if (!key) return { found: false as const };
      return { found: true as const, accessKey, secretKey: key.secretKey, grants: key.grants, admin: key.admin, revoked: key.revokedMs !== undefined };
    },
  };
}

/** What `mictlanx up` writes before the SPM's first start (a `ca` may be there too). */
const givenCredentials = z.object({ accessKey: accessKeyId, secretKey });

export interface BootstrapOptions {
  catalog: CatalogStore;
  writes: WriteBatcher;
  clock: Clock;
  /** The credentials file: read when it is there, else written (`{ accessKey, secretKey, ca }`, mode 0600). */
  path: string;
  /** The CA certificate's path, written as `ca` (null without one). */
  caPath?: string;
  log?: (line: string) => void;
}

/** The first admin key of a catalog that holds none (see the top of this file); nothing when it holds any. */
export async function bootstrapAdminKey(options: BootstrapOptions): Promise<void> {
  const { catalog, path } = options;
  if ((await catalog.countAccessKeys()) > 0) return;
  const given = readGivenCredentials(path);
  const key = given ?? { accessKey: newAccessKeyId(), secretKey: newSecretKey() };
  if (!given) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileDurable(path, `${JSON.stringify({ accessKey: key.accessKey, secretKey: key.secretKey, ca: options.caPath ?? null }, null, 2)}\n`, { mode: 0o600 });
  }
  const createdMs = options.clock.wallMs();
  await options.writes.submit(async (tx) => {
    await tx.createAccessKey({ ...key, grants: adminGrants, admin: true, createdMs });
    await tx.appendAudit({ atMs: createdMs, accessKey: null, remote: "local", action: "key.create", target: key.accessKey, outcome: "ok" });
  });
  options.log?.(given ? `imported the first admin key ${key.accessKey} from ${path}` : `made the first admin key ${key.accessKey}; its secret is in ${path} (mode 0600, shown nowhere else)`);
}

function readGivenCredentials(path: string): z.infer<typeof givenCredentials> | undefined {
  if (!existsSync(path)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new UsageError(`${path} is there but is not JSON (${error instanceof Error ? error.message : String(error)}); it should hold { "accessKey", "secretKey" } for the first admin key: fix it, or remove it and the SPM makes a key and writes it there`);
  }
  const credentials = givenCredentials.safeParse(parsed);
  if (!credentials.success) {
    throw new UsageError(`${path} does not hold { "accessKey", "secretKey" } of an access key (MX and 18 letters A-Z or digits 2-7; 40 letters and digits): fix it, or remove it and the SPM makes a key and writes it there`);
  }
  return credentials.data;
}
