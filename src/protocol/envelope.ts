// Every frame carries one envelope. A request names an operation and carries an id chosen by
// the caller; the reply carries the same id, so many requests can be in flight on one
// connection and replies can come back in any order.
//
//   request:  { id: u32, op: string, args: <op's request shape> }
//   reply:    { id: u32, ok: true,  result: <op's result shape> }
//           | { id: u32, ok: false, code: ErrorCode, message: string }
//
// An id of 0 in a reply means the server could not read the request's id (garbage frame), or
// is a notice that the server is closing the connection (idle, evicted, stalled, oversized
// frame); `unread: true` on it says the server read nothing after the replies it sent, so a
// request still waiting for its reply was not run and may be sent again on a new connection.
//
// Every connection of this build starts with a hello (`rpc.hello`, handled by the server
// itself, not by a role's op table). It says which wire versions the sender speaks and the reply
// says the server's, so two builds that cannot understand each other stop there, with both
// versions named, before any other frame is read (docs/formats.md). A node's hello also says
// who it is: the server then never evicts its connection for a client.
import { z } from "zod";
import { limits } from "../lib/limits.ts";

export const requestIdMax = 0xffff_ffff;

export const requestEnvelope = z.object({
  id: z.number().int().min(1).max(requestIdMax),
  op: z.string().min(1).max(64),
  args: z.unknown(),
});
export type RequestEnvelope = z.infer<typeof requestEnvelope>;

export const okReplyEnvelope = z.object({
  id: z.number().int().min(0).max(requestIdMax),
  ok: z.literal(true),
  result: z.unknown(),
});
export const errorReplyEnvelope = z.object({
  id: z.number().int().min(0).max(requestIdMax),
  ok: z.literal(false),
  code: z.string().max(64),
  message: z.string().max(4096),
  unread: z.literal(true).optional(),
});
export const replyEnvelope = z.discriminatedUnion("ok", [okReplyEnvelope, errorReplyEnvelope]);
export type ReplyEnvelope = z.infer<typeof replyEnvelope>;

/**
 * The wire protocol this build speaks: frames, envelopes, hellos and every op's shape. Bump it
 * for any change an older build would misread or refuse; raise `wireVersionMin` when this build
 * stops speaking an older one. 1 is every build from before hellos said a version (they send
 * none); 2 adds only that, so 1 and 2 understand each other.
 */
export const wireVersion = 2;
/** The oldest wire version this build still speaks. */
export const wireVersionMin = 1;
/** What a hello that states no version, or a connection that sends no hello, is taken to speak. */
export const wireVersionUnstated = 1;

/** The versions a side speaks: its own (`version`, the newest) down to `min`. */
export const wireVersions = z
  .object({
    version: z.number().int().min(1).max(limits.wireVersionMax),
    min: z.number().int().min(1).max(limits.wireVersionMax),
  })
  .refine((wire) => wire.min <= wire.version, "a wire range's min is above its version");
export type WireVersions = z.infer<typeof wireVersions>;
export const thisBuildWire: WireVersions = { version: wireVersion, min: wireVersionMin };
export const unstatedWire: WireVersions = { version: wireVersionUnstated, min: wireVersionUnstated };

/**
 * Two sides talk when each speaks the other's version or a newer one speaks down to it: their
 * ranges overlap. They then speak the lower of their two versions (the newer side must, having
 * promised it by its min).
 */
export function wireOverlaps(a: WireVersions, b: WireVersions): boolean {
  return a.min <= b.version && b.min <= a.version;
}

/** Why two sides cannot talk, naming both versions and what to do; "peer 127.0.0.1:7101 speaks …, this router speaks …". */
export function wireMismatch(far: { name: string; wire: WireVersions }, near: { name: string; wire: WireVersions }): string {
  const speaks = (wire: WireVersions) => (wire.min === wire.version ? `wire version ${wire.version}` : `wire versions ${wire.min} to ${wire.version}`);
  return `${far.name} speaks ${speaks(far.wire)}, ${near.name} speaks ${speaks(near.wire)}: run the same mictlanx version on every node (and client) of a VSS; docs/formats.md says which versions talk`;
}

/**
 * The hello's envelope: a request with the sender's wire versions beside its args. Beside, not
 * inside: builds before versions parse hello args strictly and would refuse an unknown field,
 * but drop unknown envelope fields, so a hello of this build still reaches them as it did.
 */
export const helloRequestEnvelope = requestEnvelope.extend({ wire: wireVersions.optional() });

/**
 * The first request of a connection that says who it is (a node: for the server's connection
 * list) or only asks who the server is (a client that expects a role: `{}`). The reply always
 * names the server's role, so a client pointed at the wrong kind of server says so on connect
 * ("127.0.0.1:7200 is an SPM, not a router") instead of failing on its first operation.
 */
export const helloOp = "rpc.hello";
export const nodeIdentity = z.object({
  role: z.string().min(1).max(limits.nodeIdentityBytesMax),
  id: z.string().min(1).max(limits.nodeIdentityBytesMax),
});
export type NodeIdentity = z.infer<typeof nodeIdentity>;
/**
 * A client's proof of an access key: an HMAC, keyed by the key's secret, of keying material
 * exported from the connection's TLS session (src/net/tls.ts, keyProof). Never the secret.
 */
export const keyHello = z
  .object({
    accessKey: z.string().min(1).max(limits.accessKeyIdBytesMax),
    proof: z.string().regex(/^[0-9a-f]{64}$/, "a proof is 64 hex digits"),
  })
  .strict();
export type KeyHello = z.infer<typeof keyHello>;
export const helloArgs = z.union([keyHello, nodeIdentity, z.object({}).strict()]);
/** What a server is: the roles that listen. */
export const serverRoles = ["spm", "router", "peer"] as const;
export type ServerRole = (typeof serverRoles)[number];
export const helloResult = z.object({
  /** The connection counts as one of the VSS's nodes (never evicted for a client). */
  node: z.boolean(),
  /** What the server is; absent from a server that was not given a role (tests' servers). */
  role: z.enum(serverRoles).optional(),
  /** Why a node's hello was served as a client's (the server holds its most node connections). */
  refused: z.string().max(1024).optional(),
  /** The wire versions the server speaks; absent from a build before versions (version 1). */
  wire: wireVersions.optional(),
});
export type HelloResult = z.infer<typeof helloResult>;

/** An operation: the shape of its arguments and of its result. */
export interface OpSpec<Args extends z.ZodType = z.ZodType, Result extends z.ZodType = z.ZodType> {
  args: Args;
  result: Result;
  /**
   * For an op whose reply is small and bounded: its most bytes. A server expects no more of a
   * request of this op than this before the op has answered once (otherwise a whole frame), so
   * many may run at once on one connection from the start (see ReplyEstimates).
   */
  replyBytesMax?: number;
}
export type OpTable = Record<string, OpSpec>;
export type ArgsOf<T extends OpTable, K extends keyof T> = z.input<T[K]["args"]>;
export type ParsedArgsOf<T extends OpTable, K extends keyof T> = z.output<T[K]["args"]>;
export type ResultOf<T extends OpTable, K extends keyof T> = z.output<T[K]["result"]>;

export function defineOps<T extends OpTable>(table: T): T {
  return table;
}

/** Turn a zod failure into one readable line: "args.size: expected number, got string". */
export function describeZodError(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "(message)"}: ${issue.message}`)
    .join("; ");
}
