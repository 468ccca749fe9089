// The SPM's access-key and audit-log operations (issue 12), spread into its op table
// (src/protocol/spm.ts), and the `actor` a router adds to the deletes it passes on.
//
// Who may call which is the net layer's to enforce (src/roles/spm/keys.ts lists what needs
// admin); these are only the shapes.
import { z } from "zod";
import { accessKeyIdPattern, secretKeyPattern } from "../lib/access-keys.ts";
import { grantsSchema } from "../lib/grants.ts";
import { limits } from "../lib/limits.ts";
import { bucketArgs, bucketOps, deletePrefixArgs } from "./ball.ts";

export const accessKeyId = z.string().regex(accessKeyIdPattern, "an access key id is MX and 18 letters A-Z or digits 2-7");
export const secretKey = z.string().regex(secretKeyPattern, "a secret key is 40 letters and digits");

/**
 * Who asked for a delete a router passes on to the SPM: the client's access key (absent when
 * anonymous or insecure) and address. The SPM writes it in the audit log in place of the
 * router's own; without it, the caller's own identity is recorded.
 */
export const auditActor = z.object({ accessKey: accessKeyId.optional(), remote: z.string().max(limits.auditRemoteBytesMax) });
export type AuditActor = z.infer<typeof auditActor>;

/** A key as `key.list` shows it: never its secret. */
export const accessKeyListed = z.object({ accessKey: accessKeyId, grants: grantsSchema, admin: z.boolean(), createdMs: z.number().int(), revoked: z.boolean() });
export type AccessKeyListed = z.infer<typeof accessKeyListed>;

export const auditRecord = z.object({
  seq: z.number().int().min(1),
  atMs: z.number().int(),
  /** null: the request carried no key (anonymous, an insecure VSS, one of the VSS's own nodes). */
  accessKey: z.string().nullable(),
  remote: z.string(),
  /** The op: key.create, key.revoke, peer.drain, peer.undrain, peer.remove, ball.delete, ball.deletePrefix, bucket.delete. */
  action: z.string(),
  /** bucket/key, bucket/prefix*, a bucket, a peer id or an access key id. */
  target: z.string(),
  /** "ok", or the error code the op ended with. */
  outcome: z.string(),
});
export type AuditRecordWire = z.infer<typeof auditRecord>;

const keyLookupFound = z.object({ found: z.literal(true), accessKey: accessKeyId, secretKey, grants: grantsSchema, admin: z.boolean(), revoked: z.boolean() });
export type KeyLookupFound = z.infer<typeof keyLookupFound>;

export const keyOps = {
  /** Make an access key; the reply is the only time its secret is shown. */
  "key.create": {
    args: z.object({ grants: grantsSchema, admin: z.boolean() }),
    result: z.object({ accessKey: accessKeyId, secretKey, grants: grantsSchema, admin: z.boolean(), createdMs: z.number().int() }),
  },
  /** A page of keys in id order after `after` (default and most: accessKeysPageMax); `next` when more follow. */
  "key.list": {
    args: z.object({ after: accessKeyId.optional(), limit: z.number().int().min(1).max(limits.accessKeysPageMax).optional() }),
    result: z.object({ keys: z.array(accessKeyListed), next: accessKeyId.optional() }),
  },
  /** Revoke a key at once; revoking one already revoked is ok, an unknown id `not_found`. */
  "key.revoke": { args: z.object({ accessKey: accessKeyId }), result: z.object({ accessKey: accessKeyId, revoked: z.literal(true) }), replyBytesMax: limits.smallReplyBytesMax },
  /** A key with its secret, for a router verifying a client's proof (restricted to routers by the net layer). */
  "key.lookup": {
    args: z.object({ accessKey: accessKeyId }),
    result: z.discriminatedUnion("found", [z.object({ found: z.literal(false) }), keyLookupFound]),
  },
  /** A page of the audit log, newest first, older than the seq `before`; `next` (pass it as `before`) when older ones follow. */
  "audit.list": {
    args: z.object({ before: z.number().int().min(1).optional(), limit: z.number().int().min(1).max(limits.auditPageMax).optional() }),
    result: z.object({ records: z.array(auditRecord), next: z.number().int().min(1).optional() }),
  },
} as const;

/** The SPM's bucket.delete and ball.deletePrefix: the shared shapes (src/protocol/ball.ts) and the router's `actor`. */
export const auditedBucketOps = {
  "bucket.delete": { ...bucketOps["bucket.delete"], args: bucketArgs.extend({ actor: auditActor.optional() }) },
  "ball.deletePrefix": { ...bucketOps["ball.deletePrefix"], args: deletePrefixArgs.extend({ actor: auditActor.optional() }) },
} as const;
