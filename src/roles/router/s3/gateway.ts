// The router's S3 endpoint (issue 13): the S3 REST API, path-style (`/bucket/key`), over HTTPS
// with the router's own certificate (plain HTTP when the router runs --insecure), on Bun.serve.
// Every request is signed with AWS Signature V4 by an access key of this VSS (src/s3/sigv4.ts)
// and its grants checked per operation; an anonymous request may only read a public-read object
// or list a public-read bucket (acl.ts). With --insecure
// there are no keys: requests are believed, signed or not, as on the native port.
// What is not built answers NotImplemented (501) in S3 XML, never a silent success.
import { randomUUID } from "node:crypto";
import { listenError } from "../../../net/listen-error.ts";
import { listenS3, type TlsPair } from "./http-server.ts";
import { limits } from "../../../lib/limits.ts";
import type { KeyRecord, KeyVerifier } from "../../../net/authorize.ts";
import type { TlsSource } from "../../../net/tls.ts";
import { verifyRequest, type PayloadMode, type VerifiedRequest } from "../../../s3/sigv4.ts";
import { S3Error } from "../../../s3/errors.ts";
import { utf8HeaderValue, type RouterCall, type S3Request } from "./context.ts";
import { createBucket, deleteBucket, getBucketLocation, headBucket, listBuckets, listObjectsV2 } from "./buckets.ts";
import { listObjectsV1, listObjectVersions, nullVersionId } from "./listing.ts";
import { authenticatePost, isPostObject, postObject } from "./post-object.ts";
import { deleteObject, getObject, headObject, putObject } from "./objects.ts";
import { copyObject } from "./copy.ts";
import { deleteObjects } from "./delete-objects.ts";
import { errorBody, s3Errors, s3ReplyFor, S3Reply } from "./xml.ts";
import { bucketAclRequest, objectAclRequest, routeAnonymous } from "./acl.ts";
import { bucketLifecycleRequest } from "./lifecycle.ts";
import { multipartRoute, startMultipartSweep } from "./multipart.ts";

export interface S3GatewayOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  region: string;
  /** --s3-domain: a Host of `bucket.DOMAIN[:port]` names the bucket (virtual-hosted style); undefined: path-style only. */
  domain?: string;
  /** TLS with the router's certificate and the VSS's keys; undefined: --insecure. */
  security?: { tls: TlsSource; keys: KeyVerifier };
  call: RouterCall;
  /** How long a multipart upload lives (default and most: limits.s3MultipartUploadMsMax). */
  multipartUploadMs?: number;
  log?: (line: string) => void;
}

export interface RunningS3Gateway {
  port: number;
  /** https://host:port, or http:// under --insecure. */
  url: string;
  /** SIGHUP: serve the certificate the router's TlsSource has just read. */
  reloadTls(): void;
  stop(): void;
}

/** Query parameters that name a subresource or an operation the gateway has not built. */
const bucketSubresources = ["uploads", "versioning", "versions", "location", "policy", "cors", "tagging", "delete", "website", "logging", "notification", "replication", "encryption", "object-lock", "accelerate", "requestPayment", "analytics", "inventory", "metrics", "intelligent-tiering", "ownershipControls", "publicAccessBlock", "policyStatus"];
const objectSubresources = ["tagging", "uploads", "uploadId", "retention", "legal-hold", "torrent", "attributes", "restore", "select", "versionId"];

export async function startS3Gateway(options: S3GatewayOptions): Promise<RunningS3Gateway> {
  const server = await listenS3(options.host, options.port, certificateOf(options), (request) => serve(request, options), (error) => errorResponse(s3ReplyFor(error), "/", randomUUID())).catch((error: unknown) => {
    throw listenError(options.host, options.port, "--s3-port", error);
  });
  const port = server.port;
  const stopSweep = startMultipartSweep({ call: options.call, record: undefined }, options.multipartUploadMs ?? limits.s3MultipartUploadMsMax, options.log);
  const url = `${options.security ? "https" : "http"}://${options.host.includes(":") ? `[${options.host}]` : options.host}:${port}`;
  return {
    port,
    url,
    reloadTls: () => {
      // The router's TlsSource has read and checked the files: new connections get them.
      const pair = certificateOf(options);
      if (pair) {
        server.setCertificate(pair).catch((error: unknown) => {
          options.log?.(`SIGHUP: the S3 endpoint could not bind ${options.host}:${port} again, so it no longer listens: ${listenError(options.host, port, "--s3-port", error).message}`);
        });
      }
    },
    stop: () => {
      stopSweep();
      void server.stop();
    },
  };
}

function certificateOf(options: S3GatewayOptions): TlsPair | undefined {
  const tls = options.security?.tls.current;
  return tls?.cert !== undefined && tls.key !== undefined ? { cert: tls.cert, key: tls.key } : undefined;
}

function errorResponse(reply: S3Reply, resource: string, requestId: string, head = false): Response {
  const headers = { "Content-Type": "application/xml", "x-amz-request-id": requestId };
  return new Response(head ? null : errorBody(reply, resource, requestId), { status: reply.httpStatus, headers });
}

async function serve(request: Request, options: S3GatewayOptions): Promise<Response> {
  const requestId = randomUUID();
  const url = new URL(request.url);
  try {
    const s3 = await authenticate(request, url, options);
    const response = s3.anonymous === true ? await routeAnonymous(s3, route) : await route(s3);
    response.headers.set("x-amz-request-id", requestId);
    return response;
  } catch (error) {
    const reply = s3ReplyFor(error);
    if (reply.httpStatus >= 500 && reply.s3Code !== "NotImplemented") options.log?.(`s3 ${request.method} ${url.pathname}: ${reply.message}`);
    return errorResponse(reply, url.pathname, requestId, request.method === "HEAD");
  }
}

/** The path's bucket and key, decoded. */
function splitPath(rawPath: string): { bucket: string; key: string } {
  const path = rawPath.startsWith("/") ? rawPath.slice(1) : rawPath;
  const slash = path.indexOf("/");
  const decode = (text: string) => {
    try {
      return decodeURIComponent(text);
    } catch {
      throw s3Errors.invalidArgument("The request path is not valid percent-encoded UTF-8");
    }
  };
  return slash < 0 ? { bucket: decode(path), key: "" } : { bucket: decode(path.slice(0, slash)), key: decode(path.slice(slash + 1)) };
}

function rawQueryOf(requestUrl: string): string {
  const at = requestUrl.indexOf("?");
  return at < 0 ? "" : requestUrl.slice(at + 1);
}

function rawPathOf(requestUrl: string, url: URL): string {
  // The path exactly as it came (the signature covers it), not as URL normalized it.
  const afterScheme = requestUrl.indexOf("//");
  const pathStart = requestUrl.indexOf("/", afterScheme + 2);
  const end = requestUrl.indexOf("?", pathStart);
  return pathStart < 0 ? url.pathname : requestUrl.slice(pathStart, end < 0 ? undefined : end);
}

/**
 * The bucket a virtual-hosted request names in its Host (`bucket.DOMAIN[:port]`), or undefined
 * for a path-style one (no --s3-domain, or a Host that is not under it).
 */
export function virtualHostBucket(host: string | null, domain: string | undefined): string | undefined {
  if (host === null || domain === undefined || domain === "") return undefined;
  const name = (host.startsWith("[") ? host : host.replace(/:[0-9]*$/, "")).toLowerCase();
  const suffix = `.${domain.toLowerCase().replace(/\.$/, "")}`;
  if (!name.endsWith(suffix) || name.length === suffix.length) return undefined;
  return name.slice(0, -suffix.length);
}

async function authenticate(request: Request, url: URL, options: S3GatewayOptions): Promise<S3Request> {
  const hosted = virtualHostBucket(request.headers.get("host"), options.domain);
  // Virtual-hosted: the whole path is the key (the signature still covers the path as sent).
  const { bucket, key } = hosted === undefined ? splitPath(url.pathname) : { bucket: hosted, key: splitPath(`/_${url.pathname}`).key };
  const base = { request, url, bucket, key, query: url.searchParams, call: options.call, region: options.region };
  if (isPostObject(request, bucket, key)) return authenticatePost(base, options.security?.keys); // signed by its form's policy
  if (!options.security) return { ...base, record: undefined, verified: insecurePayload(request) };
  // Unsigned: only what a public-read ACL opens (acl.ts routeAnonymous), else AccessDenied.
  if (!request.headers.has("authorization") && !url.searchParams.has("X-Amz-Signature")) return { ...base, record: undefined, verified: undefined, anonymous: true };
  const keys = options.security.keys;
  let record: KeyRecord | undefined;
  const headers: Record<string, string> = {};
  for (const [name, value] of request.headers) headers[name] = utf8HeaderValue(value);
  const verified = await verifyRequest(
    { method: request.method, path: rawPathOf(request.url, url), query: rawQueryOf(request.url), headers },
    async (accessKey) => {
      record = await keys.lookup(accessKey);
      if (record?.revoked) throw new S3Error("AccessDenied", `access key ${accessKey} is revoked`);
      return record?.secretKey;
    },
    { region: options.region, nowMs: Date.now(), clockSkewMaxMs: limits.s3ClockSkewMsMax },
  );
  if (record === undefined) throw s3Errors.accessDenied("no access key signed this request");
  return { ...base, record, verified };
}

/**
 * Under --insecure nothing is verified, but an aws-chunked body must still be unframed: a
 * VerifiedRequest for the unsigned trailer framing. A body with chunk signatures needs a secret
 * to check them, which there is not.
 */
function insecurePayload(request: Request): VerifiedRequest | undefined {
  const declared = request.headers.get("x-amz-content-sha256");
  if (declared === null || !declared.startsWith("STREAMING-")) return undefined;
  if (declared !== "STREAMING-UNSIGNED-PAYLOAD-TRAILER") throw s3Errors.notImplemented(`${declared} bodies on an --insecure router (there are no keys to check chunk signatures with; send UNSIGNED-PAYLOAD or run with TLS)`);
  const decoded = Number(request.headers.get("x-amz-decoded-content-length") ?? Number.NaN);
  if (!Number.isSafeInteger(decoded) || decoded < 0) throw new S3Reply("MissingContentLength", 411, "an aws-chunked body needs x-amz-decoded-content-length");
  const trailer = request.headers.get("x-amz-trailer");
  const payload: PayloadMode = "streaming-unsigned-trailer";
  return {
    accessKey: "",
    auth: "header",
    signingKey: new Uint8Array(32),
    seedSignature: "",
    amzDate: "",
    scope: "",
    payload,
    payloadSha256: undefined,
    decodedContentLength: decoded,
    trailerNames: trailer === null ? [] : trailer.split(",").map((name) => name.trim().toLowerCase()).filter((name) => name !== ""),
  };
}

function notBuilt(s3: S3Request, names: readonly string[], what: string): void {
  for (const name of names) if (s3.query.has(name)) throw s3Errors.notImplemented(`${what}?${name}`);
}

async function route(s3: S3Request): Promise<Response> {
  const method = s3.request.method;
  if (s3.bucket === "") {
    if (method === "GET") return listBuckets(s3);
    throw s3Errors.notImplemented(`${method} /`);
  }
  const multipart = multipartRoute(s3); // the names in the lists below it does not take stay NotImplemented
  if (multipart) return multipart;
  if (s3.key === "") {
    if (method === "POST" && s3.query.has("delete")) return deleteObjects(s3);
    if (method === "GET" && s3.query.has("location")) return getBucketLocation(s3);
    if (method === "GET" && s3.query.has("versions")) return listObjectVersions(s3);
    if (isPostObject(s3.request, s3.bucket, s3.key)) return postObject(s3);
    if (s3.query.has("acl")) return bucketAclRequest(s3);
    if (s3.query.has("lifecycle")) return bucketLifecycleRequest(s3);
    notBuilt(s3, bucketSubresources, `${method} /${s3.bucket}`);
    if (method === "PUT") return createBucket(s3);
    if (method === "DELETE") return deleteBucket(s3);
    if (method === "HEAD") return headBucket(s3);
    if (method === "GET") {
      if (s3.query.get("list-type") === "2") return listObjectsV2(s3);
      return listObjectsV1(s3);
    }
    throw s3Errors.notImplemented(`${method} on a bucket`);
  }
  // versionId=null names the current object (ListObjectVersions lists every object so): as if absent.
  if (s3.query.get("versionId") === nullVersionId && method !== "PUT") s3.query.delete("versionId");
  if (s3.query.has("acl")) return objectAclRequest(s3);
  notBuilt(s3, objectSubresources, `${method} /${s3.bucket}/…`);
  if (method === "PUT") return s3.request.headers.has("x-amz-copy-source") ? copyObject(s3) : putObject(s3);
  if (method === "GET") return getObject(s3);
  if (method === "HEAD") return headObject(s3);
  if (method === "DELETE") return deleteObject(s3);
  throw s3Errors.notImplemented(`${method} on an object`);
}
