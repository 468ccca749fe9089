// A small etcd v3 client over `fetch`, to etcd's HTTP/JSON gateway (grpc-gateway, served on the
// client URL at /v3/...), so mictlanx needs no gRPC dependency. What the gateway's JSON looks like:
//
//   request   POST http://HOST:PORT/v3/kv/range   {"key":"<base64>"}
//   reply     {"header":{"revision":"7",…},"kvs":[{"key":"<b64>","create_revision":"5",…}],"count":"1"}
//   error     HTTP 4xx/5xx {"error":"etcdserver: …","message":"etcdserver: …","code":5}  (a gRPC code)
//   stream    watch and keepalive answer newline-delimited {"result":{…}} (or {"error":{…}}) objects
//
// Keys and values are base64; int64s are strings; fields at their zero value are left out (a
// false `succeeded`, a PUT event's `type`, a missing key's `create_revision`), so every field is
// optional here and defaults to zero. Revisions become numbers: they are checked to have at most
// 15 digits (below 2^53; a million writes a second would take 30 years to pass it). Lease ids stay
// strings: they are opaque, not ordered, and use all 63 bits.
//
// Several endpoints: a call goes to the endpoint that last answered and, after a failure that
// says nothing was done (refused, reset, timed out, etcd's gRPC "unavailable" or "deadline
// exceeded"), to the next, at most `etcdAttemptsMax` attempts. A call that timed out may have
// been applied all the same: callers make their writes idempotent (the election does, by
// comparing create_revision and reading who holds the key).
import { z } from "zod";
import { joinHostPort } from "../lib/advertise.ts";
import { assert } from "../lib/assert.ts";
import { BadRequestError, MictlanxError, UsageError, type ErrorCode } from "../lib/errors.ts";
import { coordinationLimits } from "../lib/limits.ts";

/** etcd's default client port, used when an endpoint names none. */
export const etcdDefaultPort = 2379;

export interface EtcdEndpoint {
  host: string;
  port: number;
  /** `host:port`, as messages name it. */
  label: string;
}

/** `etcd://h1:2379,h2:2379` (the scheme may be left out; a missing port is 2379). */
export function parseEtcdUrl(text: string): EtcdEndpoint[] {
  const list = text.trim().replace(/^etcd:\/\//, "");
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(list)) throw new UsageError(`"${text}" is not an etcd URL; write etcd://host:2379[,host:2379…] (TLS to etcd is not supported yet)`);
  const parts = list.split(",").map((part) => part.trim()).filter((part) => part.length > 0);
  if (parts.length === 0) throw new UsageError(`"${text}" names no etcd endpoint; write etcd://host:2379[,host:2379…]`);
  if (parts.length > coordinationLimits.etcdEndpointsMax) throw new UsageError(`"${text}" names ${parts.length} etcd endpoints; at most ${coordinationLimits.etcdEndpointsMax} are allowed`);
  return parts.map((part) => parseEndpoint(part, text));
}

function parseEndpoint(part: string, whole: string): EtcdEndpoint {
  const match = /^(\[[^\]\s]+\]|[^:\s[\]/]+)(?::(\d{1,5}))?$/.exec(part);
  const host = match?.[1]?.replace(/^\[|\]$/g, "");
  const port = match?.[2] === undefined ? etcdDefaultPort : Number(match[2]);
  if (!match || !host || port < 1 || port > 65535) throw new UsageError(`"${part}" in "${whole}" is not an etcd endpoint; write host:port, e.g. 127.0.0.1:2379`);
  return { host, port, label: joinHostPort(host, port) };
}

/** A lease's id as etcd gave it (decimal int64): opaque, never compared for order. */
export type LeaseId = string;

export interface KeyValue {
  key: string;
  value: string;
  /** The revision that created the key (0 for a key that does not exist); grows with every creation. */
  createRevision: number;
  modRevision: number;
  /** Writes since the key was created (0: it does not exist). */
  version: number;
  /** The lease the key is attached to, if any. */
  leaseId: LeaseId | undefined;
}

export interface RangeResult {
  /** The store's revision when the range was read. */
  revision: number;
  kvs: KeyValue[];
}

export type CompareTarget = "create_revision" | "mod_revision" | "version";
export type CompareResult = "equal" | "not_equal" | "greater" | "less";
export type Compare =
  | { key: string; target: CompareTarget; result?: CompareResult; value: number }
  | { key: string; target: "lease"; result?: CompareResult; value: LeaseId };

export type TxnOp =
  | { put: { key: string; value: string; leaseId?: LeaseId } }
  | { range: { key: string } }
  | { deleteRange: { key: string } };
export type TxnOpResult = { put: { revision: number } } | { range: RangeResult } | { deleteRange: { deleted: number } };

export interface TxnRequest {
  compare: Compare[];
  success: TxnOp[];
  failure: TxnOp[];
}
export interface TxnResult {
  succeeded: boolean;
  revision: number;
  /** One per op of the branch that ran, in order. */
  responses: TxnOpResult[];
}

export interface Lease {
  id: LeaseId;
  /** What etcd granted, which may be more than asked for (it has a minimum TTL). */
  ttlMs: number;
}

export type WatchEvent = { type: "put"; kv: KeyValue } | { type: "delete"; key: string; modRevision: number };

export interface CallOptions {
  /** The whole call's budget across attempts (default: etcdRequestTimeoutMs × etcdAttemptsMax). */
  timeoutMs?: number;
}

// --- the gateway's JSON, parsed -----------------------------------------------------------------

/** An int64 etcd writes as a string, read as a number; zero when left out. */
const counter = z
  .string()
  .regex(/^\d{1,15}$/, "an etcd revision or count of at most 15 digits")
  .optional()
  .transform((text) => Number(text ?? "0"));
const leaseIdText = z.string().regex(/^-?\d{1,19}$/, "an etcd lease id (int64)");
const base64Text = z
  .string()
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, "base64")
  .optional()
  .transform((text) => Buffer.from(text ?? "", "base64").toString("utf8"));
const header = z.object({ revision: counter });

const keyValue = z
  .object({ key: base64Text, value: base64Text, create_revision: counter, mod_revision: counter, version: counter, lease: leaseIdText.optional() })
  .transform((kv): KeyValue => ({ key: kv.key, value: kv.value, createRevision: kv.create_revision, modRevision: kv.mod_revision, version: kv.version, leaseId: kv.lease === undefined || kv.lease === "0" ? undefined : kv.lease }));
const rangeReply = z.object({ header, kvs: z.array(keyValue).optional() }).transform((reply): RangeResult => ({ revision: reply.header.revision, kvs: reply.kvs ?? [] }));
const putReply = z.object({ header }).transform((reply) => ({ revision: reply.header.revision }));
const deleteReply = z.object({ header, deleted: counter }).transform((reply) => ({ revision: reply.header.revision, deleted: reply.deleted }));
const opReply = z.union([
  z.object({ response_put: putReply }).transform((op): TxnOpResult => ({ put: op.response_put })),
  z.object({ response_range: rangeReply }).transform((op): TxnOpResult => ({ range: op.response_range })),
  z.object({ response_delete_range: deleteReply }).transform((op): TxnOpResult => ({ deleteRange: { deleted: op.response_delete_range.deleted } })),
]);
const txnReply = z
  .object({ header, succeeded: z.boolean().optional(), responses: z.array(opReply).optional() })
  .transform((reply): TxnResult => ({ succeeded: reply.succeeded ?? false, revision: reply.header.revision, responses: reply.responses ?? [] }));
const grantReply = z.object({ header, ID: leaseIdText, TTL: counter, error: z.string().optional() });
/** A keepalive streams one `result` per request; a TTL of 0 (left out) means the lease is gone. */
const keepaliveReply = z.object({ result: z.object({ ID: leaseIdText.optional(), TTL: counter }) });
const revokeReply = z.object({ header });
const gatewayError = z.object({ code: z.number().int(), message: z.string() });
const watchEvent = z
  .object({ type: z.enum(["PUT", "DELETE"]).optional(), kv: keyValue })
  .transform((event): WatchEvent => (event.type === "DELETE" ? { type: "delete", key: event.kv.key, modRevision: event.kv.modRevision } : { type: "put", kv: event.kv }));
const watchLine = z.union([
  z.object({
    result: z.object({
      header,
      created: z.boolean().optional(),
      canceled: z.boolean().optional(),
      compact_revision: counter,
      cancel_reason: z.string().optional(),
      events: z.array(watchEvent).optional(),
    }),
  }),
  z.object({ error: z.object({ grpc_code: z.number().int().optional(), http_code: z.number().int().optional(), message: z.string() }) }),
]);

// --- errors ---------------------------------------------------------------------------------------

/** gRPC codes after which another endpoint (or the same one, later) may well succeed. */
const grpcUnavailable = 14;
const grpcDeadlineExceeded = 4;

/** A failed call to one endpoint; `retryable` when nothing was done and another attempt may succeed. */
export class EtcdError extends MictlanxError {
  readonly endpoint: string;
  readonly retryable: boolean;
  constructor(code: ErrorCode, endpoint: string, message: string, options: { retryable: boolean; remote: boolean; cause?: unknown }) {
    super(code, message, { remote: options.remote, cause: options.cause });
    this.name = "EtcdError";
    this.endpoint = endpoint;
    this.retryable = options.retryable;
  }
}

function codeForGrpc(grpcCode: number): ErrorCode {
  const codes: Record<number, ErrorCode> = { 3: "bad_request", 4: "timeout", 5: "not_found", 7: "forbidden", 8: "overloaded", 9: "conflict", 11: "bad_request", 14: "unavailable", 16: "forbidden" };
  return codes[grpcCode] ?? "internal";
}

function gatewayFailure(endpoint: EtcdEndpoint, path: string, grpcCode: number, message: string): EtcdError {
  const retryable = grpcCode === grpcUnavailable || grpcCode === grpcDeadlineExceeded;
  return new EtcdError(codeForGrpc(grpcCode), endpoint.label, `etcd ${endpoint.label} answered ${path} with "${message}" (gRPC code ${grpcCode})`, { retryable, remote: true });
}

function transportFailure(endpoint: EtcdEndpoint, error: unknown, timeoutMs: number): EtcdError {
  const code = (error as { code?: unknown }).code;
  const name = (error as { name?: unknown }).name;
  if (name === "TimeoutError") return new EtcdError("timeout", endpoint.label, `etcd ${endpoint.label} did not answer within ${timeoutMs} ms`, { retryable: true, remote: false, cause: error });
  if (code === "ECONNREFUSED") return new EtcdError("unavailable", endpoint.label, `etcd ${endpoint.label} refused the connection (is etcd running there?)`, { retryable: true, remote: false, cause: error });
  if (code === "ECONNRESET") return new EtcdError("unavailable", endpoint.label, `etcd ${endpoint.label} closed the connection before answering`, { retryable: true, remote: false, cause: error });
  const detail = error instanceof Error ? error.message : String(error);
  return new EtcdError("unavailable", endpoint.label, `etcd ${endpoint.label} could not be reached: ${detail}`, { retryable: true, remote: false, cause: error });
}

function badReply(endpoint: EtcdEndpoint, path: string, detail: string): EtcdError {
  return new EtcdError("bad_request", endpoint.label, `etcd ${endpoint.label} sent a reply to ${path} that is not what etcd v3.4+ sends (${detail}); is that address an etcd client URL?`, { retryable: false, remote: true });
}

/** Only small keys are read here: a bigger reply is someone else's data, or not etcd. */
function tooLarge(endpoint: EtcdEndpoint, path: string, size: string, bytesMax: number, limitName = "etcdReplyBytesMax"): EtcdError {
  return new EtcdError("bad_request", endpoint.label, `etcd ${endpoint.label} sent a reply to ${path} of ${size}, over the bound of ${bytesMax} bytes this client reads (${limitName})`, { retryable: false, remote: true });
}

// --- the client -----------------------------------------------------------------------------------

const encode = (text: string) => Buffer.from(text, "utf8").toString("base64");

function compareJson(compare: Compare): Record<string, string> {
  const result = (compare.result ?? "equal").toUpperCase();
  const key = encode(compare.key);
  if (compare.target === "lease") return { key, result, target: "LEASE", lease: compare.value };
  assert(Number.isSafeInteger(compare.value) && compare.value >= 0, "a compared revision or version is a whole number");
  const target = { create_revision: "CREATE", mod_revision: "MOD", version: "VERSION" }[compare.target];
  return { key, result, target, [compare.target]: String(compare.value) };
}

function opJson(op: TxnOp): Record<string, Record<string, string>> {
  if ("put" in op) return { request_put: { key: encode(op.put.key), value: encode(op.put.value), ...(op.put.leaseId === undefined ? {} : { lease: op.put.leaseId }) } };
  if ("range" in op) return { request_range: { key: encode(op.range.key) } };
  return { request_delete_range: { key: encode(op.deleteRange.key) } };
}

export class EtcdClient {
  readonly endpoints: readonly EtcdEndpoint[];
  /** The endpoint that answered last: calls start there. */
  private preferred = 0;

  constructor(endpoints: readonly EtcdEndpoint[] | string) {
    this.endpoints = typeof endpoints === "string" ? parseEtcdUrl(endpoints) : [...endpoints];
    if (this.endpoints.length === 0 || this.endpoints.length > coordinationLimits.etcdEndpointsMax) {
      throw new UsageError(`an etcd client needs 1 to ${coordinationLimits.etcdEndpointsMax} endpoints, got ${this.endpoints.length}`);
    }
  }

  /** The key's current value (kvs is empty when it does not exist). */
  async range(key: string, options?: CallOptions): Promise<RangeResult> {
    return this.call("/v3/kv/range", { key: encode(key) }, rangeReply, options);
  }

  async put(key: string, value: string, options: CallOptions & { leaseId?: LeaseId } = {}): Promise<{ revision: number }> {
    const body = { key: encode(key), value: encode(value), ...(options.leaseId === undefined ? {} : { lease: options.leaseId }) };
    return this.call("/v3/kv/put", body, putReply, options);
  }

  async deleteKey(key: string, options?: CallOptions): Promise<{ revision: number; deleted: number }> {
    return this.call("/v3/kv/deleterange", { key: encode(key) }, deleteReply, options);
  }

  /** All compares hold → the success ops run, else the failure ops; atomically, at one revision. */
  async txn(request: TxnRequest, options?: CallOptions): Promise<TxnResult> {
    const body = { compare: request.compare.map(compareJson), success: request.success.map(opJson), failure: request.failure.map(opJson) };
    const result = await this.call("/v3/kv/txn", body, txnReply, options);
    const expected = result.succeeded ? request.success.length : request.failure.length;
    if (result.responses.length !== expected) throw new BadRequestError(`etcd answered a transaction of ${expected} ops with ${result.responses.length} results`);
    return result;
  }

  async leaseGrant(ttlMs: number, options?: CallOptions): Promise<Lease> {
    assert(ttlMs % 1_000 === 0 && ttlMs >= coordinationLimits.leaseTtlMsMin && ttlMs <= coordinationLimits.leaseTtlMsMax, `a lease TTL is whole seconds within bounds, got ${ttlMs} ms`);
    const reply = await this.call("/v3/lease/grant", { TTL: String(ttlMs / 1_000) }, grantReply, options);
    if (reply.error !== undefined && reply.error.length > 0) throw new MictlanxError("unavailable", `etcd could not grant a lease: ${reply.error}`, { remote: true });
    assert(reply.TTL > 0, "etcd granted a lease with no TTL");
    return { id: reply.ID, ttlMs: reply.TTL * 1_000 };
  }

  /** Renews the lease to its full TTL; answers the TTL left, 0 when etcd no longer has the lease. */
  async leaseKeepAlive(id: LeaseId, options?: CallOptions): Promise<{ ttlMs: number }> {
    const reply = await this.call("/v3/lease/keepalive", { ID: id }, keepaliveReply, options);
    return { ttlMs: reply.result.TTL * 1_000 };
  }

  /** Ends the lease and deletes every key attached to it. A lease etcd does not have is `not_found`. */
  async leaseRevoke(id: LeaseId, options?: CallOptions): Promise<void> {
    await this.call("/v3/lease/revoke", { ID: id }, revokeReply, options);
  }

  /**
   * The changes to `key` from `startRevision` on, as they happen, until `signal` aborts (the
   * stream then ends quietly) or the stream breaks (an error). Connecting tries the endpoints
   * as a call does; an established stream stays on its endpoint.
   */
  async *watch(key: string, options: { startRevision: number; signal: AbortSignal }): AsyncGenerator<WatchEvent[]> {
    const body = { create_request: { key: encode(key), start_revision: String(options.startRevision) } };
    const { response, endpoint } = await this.connect("/v3/watch", body, options.signal);
    yield* readWatch(response, endpoint, options.signal);
  }

  private async call<T>(path: string, body: unknown, schema: z.ZodType<T>, options: CallOptions = {}): Promise<T> {
    const budgetMs = options.timeoutMs ?? coordinationLimits.etcdRequestTimeoutMs * coordinationLimits.etcdAttemptsMax;
    const deadlineMs = performance.now() + budgetMs;
    const failures: EtcdError[] = [];
    for (let attempt = 0; attempt < coordinationLimits.etcdAttemptsMax; attempt += 1) {
      const leftMs = Math.floor(deadlineMs - performance.now());
      if (leftMs <= 0) break;
      const index = (this.preferred + attempt) % this.endpoints.length;
      const endpoint = this.endpoints[index];
      assert(endpoint !== undefined, "endpoint index in range");
      try {
        const result = await this.post(endpoint, path, body, schema, Math.min(leftMs, coordinationLimits.etcdRequestTimeoutMs));
        this.preferred = index;
        return result;
      } catch (error) {
        if (!(error instanceof EtcdError) || !error.retryable) throw error;
        failures.push(error);
        if ((attempt + 1) % this.endpoints.length === 0) await Bun.sleep(Math.min(coordinationLimits.etcdRetryBackoffMs, Math.max(0, deadlineMs - performance.now())));
      }
    }
    throw allFailed(path, failures, budgetMs);
  }

  private async post<T>(endpoint: EtcdEndpoint, path: string, body: unknown, schema: z.ZodType<T>, timeoutMs: number): Promise<T> {
    let response: Response;
    let text: string;
    try {
      response = await fetch(urlOf(endpoint, path), { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" }, signal: AbortSignal.timeout(timeoutMs) });
      text = await readBounded(response, coordinationLimits.etcdReplyBytesMax, endpoint, path);
    } catch (error) {
      if (error instanceof EtcdError) throw error;
      throw transportFailure(endpoint, error, timeoutMs);
    }
    const json = parseJson(text, endpoint, path);
    if (!response.ok) {
      const failure = gatewayError.safeParse(json);
      if (!failure.success) throw badReply(endpoint, path, `HTTP ${response.status}: ${text.slice(0, 200)}`);
      throw gatewayFailure(endpoint, path, failure.data.code, failure.data.message);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw badReply(endpoint, path, z.prettifyError(parsed.error).replaceAll("\n", " "));
    return parsed.data;
  }

  /** Opens a stream: the endpoints in turn until one answers 200. */
  private async connect(path: string, body: unknown, signal: AbortSignal): Promise<{ response: Response; endpoint: EtcdEndpoint }> {
    const failures: EtcdError[] = [];
    for (let attempt = 0; attempt < coordinationLimits.etcdAttemptsMax; attempt += 1) {
      const index = (this.preferred + attempt) % this.endpoints.length;
      const endpoint = this.endpoints[index];
      assert(endpoint !== undefined, "endpoint index in range");
      try {
        const response = await openStream(endpoint, path, body, signal);
        if (response.ok) {
          this.preferred = index;
          return { response, endpoint };
        }
        const text = await readBounded(response, coordinationLimits.etcdReplyBytesMax, endpoint, path);
        const failure = gatewayError.safeParse(parseJson(text, endpoint, path));
        throw failure.success ? gatewayFailure(endpoint, path, failure.data.code, failure.data.message) : badReply(endpoint, path, `HTTP ${response.status}`);
      } catch (error) {
        if (signal.aborted) throw new EtcdError("unavailable", endpoint.label, `watch of etcd ${endpoint.label} was stopped`, { retryable: false, remote: false });
        const failure = error instanceof EtcdError ? error : transportFailure(endpoint, error, coordinationLimits.etcdRequestTimeoutMs);
        if (!failure.retryable) throw failure;
        failures.push(failure);
      }
    }
    throw allFailed(path, failures, coordinationLimits.etcdRequestTimeoutMs * coordinationLimits.etcdAttemptsMax);
  }
}

/**
 * POSTs and waits for the reply's head only, within etcdRequestTimeoutMs: the body is the stream,
 * read until `signal` aborts (so the timeout is cleared once the head is in).
 */
async function openStream(endpoint: EtcdEndpoint, path: string, body: unknown, signal: AbortSignal): Promise<Response> {
  const controller = new AbortController();
  if (signal.aborted) controller.abort(signal.reason);
  else signal.addEventListener("abort", () => controller.abort(signal.reason), { once: true });
  const timer = setTimeout(() => controller.abort(new DOMException("the reply's head did not come in time", "TimeoutError")), coordinationLimits.etcdRequestTimeoutMs);
  try {
    return await fetch(urlOf(endpoint, path), { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" }, signal: controller.signal });
  } finally {
    clearTimeout(timer);
  }
}

function urlOf(endpoint: EtcdEndpoint, path: string): string {
  const host = endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host;
  return `http://${host}:${endpoint.port}${path}`;
}

function allFailed(path: string, failures: EtcdError[], budgetMs: number): EtcdError {
  const last = failures.at(-1);
  if (last === undefined) return new EtcdError("timeout", "", `etcd call ${path} had no time left in its budget of ${budgetMs} ms`, { retryable: true, remote: false });
  if (failures.length === 1) return last;
  const tried = [...new Set(failures.map((failure) => failure.message))].join("; ");
  return new EtcdError(last.code, last.endpoint, `etcd ${path} failed ${failures.length} times: ${tried}`, { retryable: true, remote: last.remote });
}

function parseJson(text: string, endpoint: EtcdEndpoint, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw badReply(endpoint, path, `not JSON: ${text.slice(0, 200)}`);
  }
}

/** The reply's body as text, refused past `bytesMax` before it is all buffered. */
async function readBounded(response: Response, bytesMax: number, endpoint: EtcdEndpoint, path: string): Promise<string> {
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > bytesMax) throw tooLarge(endpoint, path, `${declared} bytes`, bytesMax);
  const reader = response.body?.getReader();
  if (reader === undefined) return "";
  const pieces: Uint8Array[] = [];
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > bytesMax) {
      await reader.cancel();
      throw tooLarge(endpoint, path, `more than ${bytesMax} bytes`, bytesMax);
    }
    pieces.push(value);
  }
  return Buffer.concat(pieces).toString("utf8");
}

/** The watch stream's lines, each a batch of events; ends quietly when `signal` aborts. */
async function* readWatch(response: Response, endpoint: EtcdEndpoint, signal: AbortSignal): AsyncGenerator<WatchEvent[]> {
  const reader = response.body?.getReader();
  if (reader === undefined) throw badReply(endpoint, "/v3/watch", "a watch reply with no body");
  const decoder = new TextDecoder();
  let pending = "";
  try {
    for (;;) {
      const { done, value } = await reader.read().catch((error: unknown) => {
        if (signal.aborted) return { done: true as const, value: undefined };
        throw transportFailure(endpoint, error, 0);
      });
      if (done) break;
      pending += decoder.decode(value, { stream: true });
      let newline = pending.indexOf("\n");
      for (; newline >= 0; newline = pending.indexOf("\n")) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (line.length > 0) yield parseWatchLine(line, endpoint);
      }
      if (pending.length > coordinationLimits.etcdWatchLineBytesMax) throw tooLarge(endpoint, "/v3/watch", `a message of more than ${coordinationLimits.etcdWatchLineBytesMax} bytes`, coordinationLimits.etcdWatchLineBytesMax, "etcdWatchLineBytesMax");
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  if (!signal.aborted) throw new EtcdError("unavailable", endpoint.label, `etcd ${endpoint.label} ended the watch stream`, { retryable: true, remote: false });
}

function parseWatchLine(line: string, endpoint: EtcdEndpoint): WatchEvent[] {
  const parsed = watchLine.safeParse(parseJson(line, endpoint, "/v3/watch"));
  if (!parsed.success) throw badReply(endpoint, "/v3/watch", z.prettifyError(parsed.error).replaceAll("\n", " "));
  if ("error" in parsed.data) throw gatewayFailure(endpoint, "/v3/watch", parsed.data.error.grpc_code ?? grpcUnavailable, parsed.data.error.message);
  const result = parsed.data.result;
  if (result.canceled) {
    const why = result.compact_revision > 0 ? `the revisions it asked for were compacted (up to ${result.compact_revision})` : (result.cancel_reason ?? "no reason given");
    throw new EtcdError("unavailable", endpoint.label, `etcd ${endpoint.label} canceled the watch: ${why}`, { retryable: true, remote: true });
  }
  return result.events ?? [];
}
