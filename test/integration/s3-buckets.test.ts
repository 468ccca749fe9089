// The S3 gateway's listings (ListObjects V1, ListObjectVersions, ListObjectsV2 on one walker),
// GetBucketLocation, the region refusal, virtual-hosted-style requests (--s3-domain localhost)
// and ListBuckets by any grant, through the real @aws-sdk/client-s3 against a real VSS.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { Agent } from "node:https";
import { checkServerIdentity } from "node:tls";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { HttpHandlerOptions } from "@smithy/types";
import type { HttpRequest } from "@smithy/core/transport";
import { cli, eventually, kill9, programCommand, startRole, startTestVss } from "../support/vss.ts";
import { testCredentials, tlsArgs } from "../support/security.ts";
import { join } from "node:path";
import { randomBytes, seededRandom } from "../support/random.ts";
import { amzDateOf, deriveSigningKey, hmacHex } from "../../src/s3/sigv4.ts";
import { createHash } from "node:crypto";
import { s3ErrorOf, s3SdkClient } from "../support/s3-sdk.ts";

let vss: Awaited<ReturnType<typeof startTestVss>>;
let endpoint: string;
const caPem = readFileSync(testCredentials.ca, "utf8");
const clients: S3Client[] = [];

function clientWith(accessKeyId: string, secretAccessKey: string, region = "us-east-1"): S3Client {
  const client = s3SdkClient(endpoint, accessKeyId, secretAccessKey, region);
  clients.push(client);
  return client;
}
let s3: S3Client;

/** Keys of every shape the listing must keep in byte order: nested dirs, spaces, +, &, é, quotes. */
const keys: string[] = [];
const bucket = "lists";

beforeAll(async () => {
  vss = await startTestVss({ label: "s3-buckets", routerArgs: ["--s3-port", "0", "--s3-domain", "localhost"] });
  const url = vss.routers[0]?.s3Url;
  if (url === undefined) throw new Error(`the router printed no S3 endpoint: ${vss.routers[0]?.readyLine}`);
  endpoint = url;
  s3 = clientWith(testCredentials.accessKey, testCredentials.secretKey);
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const { random } = seededRandom("s3-buckets key names");
  const names = ["a", "b b", "c+d", "e&f", "é", 'q"', "z", "Zed", "0"];
  const pick = () => names[Math.floor(random() * names.length)] ?? "a";
  const set = new Set<string>();
  while (set.size < 1200) {
    const depth = Math.floor(random() * 3);
    const parts = Array.from({ length: depth }, pick);
    set.add([...parts, `${pick()}-${Math.floor(random() * 1e6)}`].join("/"));
  }
  keys.push(...[...set].sort(byteOrder));
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < keys.length) {
        const key = keys[next++] ?? "";
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }));
      }
    }),
  );
}, 180_000);
afterAll(async () => {
  for (const client of clients) client.destroy();
  await vss?.cleanup();
});

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** What S3 lists for prefix and delimiter: keys and common prefixes, each once, in byte order. */
function expectedListing(prefix: string, delimiter: string): { keys: string[]; prefixes: string[]; order: string[] } {
  const out = { keys: [] as string[], prefixes: [] as string[], order: [] as string[] };
  for (const key of keys) {
    if (!key.startsWith(prefix)) continue;
    const cut = delimiter === "" ? -1 : key.indexOf(delimiter, prefix.length);
    if (cut < 0) {
      out.keys.push(key);
      out.order.push(key);
      continue;
    }
    const common = key.slice(0, cut + delimiter.length);
    if (out.prefixes.at(-1) !== common) {
      out.prefixes.push(common);
      out.order.push(common);
    }
  }
  return out;
}

const errorOf = s3ErrorOf;

describe("S3 listings", () => {
  test.each([
    ["", "/", 100],
    ["", "", 250],
    ["a/", "/", 7],
    ["b b/", "", 1000],
  ])("ListObjects V1 prefix %p delimiter %p, %d a page: every key and common prefix once, in byte order", async (prefix, delimiter, maxKeys) => {
    const want = expectedListing(prefix, delimiter);
    const got = { keys: [] as string[], prefixes: [] as string[] };
    let marker: string | undefined;
    for (let pages = 0; ; pages++) {
      expect(pages).toBeLessThan(2 + keys.length / maxKeys);
      const page = await s3.send(new ListObjectsCommand({ Bucket: bucket, Prefix: prefix, MaxKeys: maxKeys, ...(delimiter === "" ? {} : { Delimiter: delimiter }), ...(marker === undefined ? {} : { Marker: marker }) }));
      const pageKeys = (page.Contents ?? []).map((object) => object.Key ?? "");
      got.keys.push(...pageKeys);
      got.prefixes.push(...(page.CommonPrefixes ?? []).map((common) => common.Prefix ?? ""));
      expect(pageKeys.length + (page.CommonPrefixes?.length ?? 0)).toBeLessThanOrEqual(maxKeys);
      if (!page.IsTruncated) break;
      // NextMarker comes only with a delimiter, as S3 sends it; without one the client goes on from the last key.
      if (delimiter === "") expect(page.NextMarker).toBeUndefined();
      marker = delimiter === "" ? pageKeys.at(-1) : page.NextMarker;
      expect(marker).toBeDefined();
    }
    expect(got.keys).toEqual(want.keys);
    expect(got.prefixes).toEqual(want.prefixes);
  }, 60_000);

  test("ListObjectsV2 on the same walker: paginated with a delimiter, the same as V1", async () => {
    const want = expectedListing("", "/");
    const got: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Delimiter: "/", MaxKeys: 50, ...(token === undefined ? {} : { ContinuationToken: token }) }));
      got.push(...(page.Contents ?? []).map((object) => object.Key ?? ""), ...(page.CommonPrefixes ?? []).map((common) => common.Prefix ?? ""));
      token = page.NextContinuationToken;
    } while (token !== undefined);
    expect(got.sort(byteOrder)).toEqual([...want.order].sort(byteOrder));
  }, 60_000);

  test("ListObjects V1 with encoding-type=url: keys and NextMarker percent-encoded", async () => {
    const page = await s3.send(new ListObjectsCommand({ Bucket: bucket, Prefix: "b b/", Delimiter: "/", MaxKeys: 1, EncodingType: "url" }));
    const first = expectedListing("b b/", "/").order[0] ?? "";
    const shown = [...(page.Contents ?? []).map((object) => object.Key), ...(page.CommonPrefixes ?? []).map((common) => common.Prefix)];
    expect(shown).toEqual([encodeURIComponent(first).replace(/%2F/g, "/")]);
    expect(page.NextMarker).toBe(encodeURIComponent(first).replace(/%2F/g, "/"));
  }, 30_000);

  test("ListObjectVersions: every current object once, VersionId null and IsLatest, paged by key-marker and version-id-marker", async () => {
    const want = expectedListing("", "/");
    const got = { keys: [] as string[], prefixes: [] as string[] };
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    for (;;) {
      const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Delimiter: "/", MaxKeys: 3, ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }), ...(versionMarker === undefined ? {} : { VersionIdMarker: versionMarker }) }));
      for (const version of page.Versions ?? []) {
        expect(version.VersionId).toBe("null");
        expect(version.IsLatest).toBe(true);
        got.keys.push(version.Key ?? "");
      }
      got.prefixes.push(...(page.CommonPrefixes ?? []).map((common) => common.Prefix ?? ""));
      expect(page.DeleteMarkers ?? []).toEqual([]);
      if (!page.IsTruncated) break;
      keyMarker = page.NextKeyMarker;
      versionMarker = page.NextVersionIdMarker;
    }
    expect(got.keys).toEqual(want.keys);
    expect(got.prefixes).toEqual(want.prefixes);
  }, 60_000);

  test("cleanup by versions: DeleteObject with VersionId null deletes the current object", async () => {
    await s3.send(new CreateBucketCommand({ Bucket: "cleanup" }));
    for (const key of ["x/1", "x/2", "y"]) await s3.send(new PutObjectCommand({ Bucket: "cleanup", Key: key, Body: key }));
    const listed = await s3.send(new ListObjectVersionsCommand({ Bucket: "cleanup" }));
    expect((listed.Versions ?? []).map((version) => version.Key)).toEqual(["x/1", "x/2", "y"]);
    for (const version of listed.Versions ?? []) await s3.send(new DeleteObjectCommand({ Bucket: "cleanup", Key: version.Key ?? "", VersionId: version.VersionId ?? "" }));
    expect((await s3.send(new ListObjectVersionsCommand({ Bucket: "cleanup" }))).Versions ?? []).toEqual([]);
    expect((await errorOf(s3.send(new HeadObjectCommand({ Bucket: "cleanup", Key: "y" })))).$metadata.httpStatusCode).toBe(404);
    const other = await errorOf(s3.send(new DeleteObjectCommand({ Bucket: "cleanup", Key: "y", VersionId: "3HL4kqtJlcpXroDTDmJ" })));
    expect(other.name).toBe("NotImplemented");
  }, 30_000);
});

describe("S3 location and region", () => {
  test("GetBucketLocation is empty for us-east-1, as S3 answers; HeadBucket names the region; a missing bucket is NoSuchBucket", async () => {
    const location = await s3.send(new GetBucketLocationCommand({ Bucket: bucket }));
    expect(location.LocationConstraint ?? "").toBe("");
    const head = await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    expect(head.BucketRegion).toBe("us-east-1");
    expect((await errorOf(s3.send(new GetBucketLocationCommand({ Bucket: "no-such-bucket" })))).name).toBe("NoSuchBucket");
  }, 30_000);

  test("a router with --s3-region eu-central-1 answers it in GetBucketLocation and HeadBucket, and refuses us-east-1 signatures", async () => {
    const router = await startRole("router-eu", ["router", "--port", "0", "--metrics-port", "off", "--spm", vss.spm.address, "--s3-port", "0", "--s3-region", "eu-central-1", ...(await tlsArgs("router", "router-eu"))], join(vss.dir, "logs", "router-eu.log"), programCommand());
    try {
      if (router.s3Url === undefined) throw new Error("router-eu serves no S3");
      const europe = new S3Client({ endpoint: router.s3Url, region: "eu-central-1", forcePathStyle: true, credentials: { accessKeyId: testCredentials.accessKey, secretAccessKey: testCredentials.secretKey }, requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca: caPem }) }) });
      clients.push(europe);
      expect((await europe.send(new GetBucketLocationCommand({ Bucket: bucket }))).LocationConstraint).toBe("eu-central-1");
      expect((await europe.send(new HeadBucketCommand({ Bucket: bucket }))).BucketRegion).toBe("eu-central-1");
      const american = new S3Client({ endpoint: router.s3Url, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: testCredentials.accessKey, secretAccessKey: testCredentials.secretKey }, requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca: caPem }) }) });
      clients.push(american);
      const refused = await errorOf(american.send(new ListObjectsCommand({ Bucket: bucket, MaxKeys: 1 })));
      expect(refused.message).toContain("the region 'us-east-1' is wrong; expecting 'eu-central-1'");
    } finally {
      kill9(router);
      await router.exited;
    }
  }, 60_000);

  test("a request signed for another region is AuthorizationHeaderMalformed naming the region expected; a presigned URL too", async () => {
    const elsewhere = clientWith(testCredentials.accessKey, testCredentials.secretKey, "eu-west-1");
    const refused = await errorOf(elsewhere.send(new ListObjectsCommand({ Bucket: bucket, MaxKeys: 1 })));
    expect(refused.name).toBe("AuthorizationHeaderMalformed");
    expect(refused.message).toContain("the region 'eu-west-1' is wrong; expecting 'us-east-1'");
    expect((refused as S3ServiceException & { Region?: string }).Region).toBe("us-east-1");
    const url = await getSignedUrl(elsewhere, new GetObjectCommand({ Bucket: bucket, Key: keys[0] ?? "" }), { expiresIn: 60 });
    const presigned = await fetch(url, { tls: { ca: caPem } });
    expect(presigned.status).toBe(400);
    const body = await presigned.text();
    expect(body).toContain("<Code>AuthorizationQueryParametersError</Code>");
    expect(body).toContain("<Region>us-east-1</Region>");
    const right = await fetch(await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: keys[0] ?? "" }), { expiresIn: 60 }), { tls: { ca: caPem } });
    expect(await right.text()).toBe(keys[0] ?? "");
  }, 30_000);
});

describe("S3 virtual-hosted style (--s3-domain localhost)", () => {
  /**
   * The SDK with forcePathStyle false names the bucket in the Host (`lists.localhost:PORT`); the
   * handler connects to 127.0.0.1 (no DNS: *.localhost need not resolve here) and sends that Host
   * as signed. It records the Hosts, so the test fails if the SDK went path-style.
   */
  function virtualHostedClient(hosts: string[]): S3Client {
    // The router's certificate names localhost, not *.localhost (a real deployment under
    // --s3-domain needs a wildcard one): the name is checked as localhost, the CA as always.
    const inner = new NodeHttpHandler({ httpsAgent: new Agent({ ca: caPem, checkServerIdentity: (_host, cert) => checkServerIdentity("localhost", cert) }) });
    const port = new URL(endpoint).port;
    const handler = {
      metadata: inner.metadata,
      handle: (request: HttpRequest, options?: HttpHandlerOptions) => {
        hosts.push(`${request.headers.host ?? ""} ${request.path}`);
        request.hostname = "127.0.0.1";
        return inner.handle(request, options);
      },
      updateHttpClientConfig: inner.updateHttpClientConfig.bind(inner),
      httpHandlerConfigs: inner.httpHandlerConfigs.bind(inner),
      destroy: () => inner.destroy(),
    };
    const client = new S3Client({ endpoint: `https://localhost:${port}`, region: "us-east-1", forcePathStyle: false, credentials: { accessKeyId: testCredentials.accessKey, secretAccessKey: testCredentials.secretKey }, requestHandler: handler });
    clients.push(client);
    return client;
  }

  test("put, get, list and head through bucket.localhost; the same objects path-style", async () => {
    const hosts: string[] = [];
    const hosted = virtualHostedClient(hosts);
    const key = "vhost/a key+é";
    const body = new TextEncoder().encode(`virtual ${Date.now()}`);
    await hosted.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    const got = await hosted.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    expect(Buffer.from((await got.Body?.transformToByteArray()) ?? []).equals(Buffer.from(body))).toBe(true);
    const listed = await hosted.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "vhost/" }));
    expect((listed.Contents ?? []).map((object) => object.Key)).toEqual([key]);
    await hosted.send(new HeadBucketCommand({ Bucket: bucket }));
    const viaPath = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    expect(Buffer.from((await viaPath.Body?.transformToByteArray()) ?? []).equals(Buffer.from(body))).toBe(true);
    expect(hosts.length).toBeGreaterThanOrEqual(4);
    for (const line of hosts) expect(line).toMatch(new RegExp(`^${bucket}\\.localhost:\\d+ /`));
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  }, 30_000);
});

describe("ListBuckets", () => {
  test("a key sees the buckets it holds any grant on (read only is enough), not the others", async () => {
    await s3.send(new CreateBucketCommand({ Bucket: "read-only-here" }));
    const made = await cli(["key", "create", "--bucket", "read-only-here", "--allow", "read", "--json", "--spm", vss.spm.address]);
    expect(made.code).toBe(0);
    const reader = JSON.parse(made.stdout) as { accessKey: string; secretKey: string };
    const limited = clientWith(reader.accessKey, reader.secretKey);
    expect((await limited.send(new ListBucketsCommand({}))).Buckets?.map((one) => one.Name)).toEqual(["read-only-here"]);
    expect((await errorOf(limited.send(new ListObjectsCommand({ Bucket: "read-only-here" })))).name).toBe("AccessDenied");
    const writer = JSON.parse((await cli(["key", "create", "--bucket", "clean*", "--allow", "write", "--json", "--spm", vss.spm.address])).stdout) as { accessKey: string; secretKey: string };
    expect((await clientWith(writer.accessKey, writer.secretKey).send(new ListBucketsCommand({}))).Buckets?.map((one) => one.Name)).toEqual(["cleanup"]);
  }, 30_000);

  test("CreationDate is the catalog's and stays the same across an SPM and router restart", async () => {
    const before = (await s3.send(new ListBucketsCommand({}))).Buckets ?? [];
    expect(before.length).toBeGreaterThanOrEqual(3);
    const spm = vss.spm;
    const router = vss.routers[0];
    if (router === undefined) throw new Error("no router");
    kill9(spm);
    kill9(router);
    await Promise.all([spm.exited, router.exited]);
    await vss.startSpm();
    const restarted = await vss.startRouter(0);
    if (restarted.s3Url === undefined) throw new Error("the restarted router serves no S3");
    endpoint = restarted.s3Url;
    const again = clientWith(testCredentials.accessKey, testCredentials.secretKey);
    s3 = again; // the tests after this one talk to the restarted router
    let after: typeof before = [];
    await eventually("the restarted VSS lists its buckets", 30_000, async () => {
      after = (await again.send(new ListBucketsCommand({}))).Buckets ?? [];
      return after.length === before.length;
    });
    expect(after.map((one) => [one.Name, one.CreationDate?.toISOString()])).toEqual(before.map((one) => [one.Name, one.CreationDate?.toISOString()]));
    // The restarted SPM hears from its peers again before it places writes: the tests after this one put.
    await eventually("the restarted VSS takes writes", 30_000, async () => {
      await again.send(new PutObjectCommand({ Bucket: "cleanup", Key: "after-restart", Body: "x" }));
      return true;
    });
  }, 60_000);
});

describe("PostObject (browser form uploads)", () => {
  /** A form as a browser sends it, its policy signed here with the admin key. */
  function postForm(file: Uint8Array, options: { expiresInMs?: number; lengthRange?: [number, number]; status?: string; key?: string } = {}): FormData {
    const amzDate = amzDateOf(Date.now());
    const credential = `${testCredentials.accessKey}/${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request`;
    const conditions: unknown[] = [
      { bucket },
      ["starts-with", "$key", "posted/"],
      { "x-amz-algorithm": "AWS4-HMAC-SHA256" },
      { "x-amz-credential": credential },
      { "x-amz-date": amzDate },
      ["starts-with", "$Content-Type", ""],
      ["starts-with", "$x-amz-meta-colour", ""],
      ["eq", "$Cache-Control", "max-age=60"],
      ["eq", "$success_action_status", options.status ?? "201"],
      ...(options.lengthRange ? [["content-length-range", ...options.lengthRange]] : []),
    ];
    const policy = Buffer.from(JSON.stringify({ expiration: new Date(Date.now() + (options.expiresInMs ?? 60_000)).toISOString(), conditions })).toString("base64");
    const signature = hmacHex(deriveSigningKey(testCredentials.secretKey, amzDate.slice(0, 8), "us-east-1", "s3"), policy);
    const form = new FormData();
    const fields = { key: options.key ?? "posted/${filename}", "x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-credential": credential, "x-amz-date": amzDate, policy, "x-amz-signature": signature, "Content-Type": "image/png", "x-amz-meta-colour": "azul é", "Cache-Control": "max-age=60", success_action_status: options.status ?? "201" };
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    form.append("file", new Blob([file]), "photo é.png");
    return form;
  }

  async function post(form: FormData): Promise<Response> {
    return fetch(`${endpoint}/${bucket}`, { method: "POST", body: form, tls: { ca: caPem } });
  }

  test("a signed form uploads its file (201, PostResponse); it reads back byte-exact with its Content-Type and metadata", async () => {
    const { random } = seededRandom("s3-buckets post file");
    const file = randomBytes(random, 9 * 1024 * 1024 + 5); // more than one chunk: streamed through PutObject's path
    const response = await post(postForm(file, { lengthRange: [1, 16 * 1024 * 1024] }));
    const text = await response.text();
    expect(response.status).toBe(201);
    const md5 = createHash("md5").update(file).digest("hex");
    expect(text).toContain(`<Key>posted/photo é.png</Key>`);
    expect(text).toContain(`<ETag>&quot;${md5}&quot;</ETag>`);
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "posted/photo é.png" }));
    expect(got.ContentType).toBe("image/png");
    expect(got.Metadata).toEqual({ colour: "azul é" });
    expect(got.CacheControl).toBe("max-age=60");
    expect(got.ETag).toBe(`"${md5}"`);
    expect(Buffer.from((await got.Body?.transformToByteArray()) ?? []).equals(Buffer.from(file))).toBe(true);
    const plain = await post(postForm(new TextEncoder().encode("small"), { status: "204", key: "posted/small" }));
    expect(plain.status).toBe(204);
    const small = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "posted/small" }));
    expect(await small.Body?.transformToString()).toBe("small");
  }, 60_000);

  test("an expired policy, a content-length-range violation, a wrong signature and an unsigned form are refused; nothing stored", async () => {
    const expired = await post(postForm(new TextEncoder().encode("late"), { expiresInMs: -1000, key: "posted/late" }));
    expect(expired.status).toBe(403);
    expect(await expired.text()).toContain("Policy expired");
    const tooBig = await post(postForm(new Uint8Array(101), { lengthRange: [1, 100], key: "posted/big" }));
    expect(tooBig.status).toBe(400);
    expect(await tooBig.text()).toContain("<Code>EntityTooLarge</Code>");
    const tooSmall = await post(postForm(new Uint8Array(0), { lengthRange: [1, 100], key: "posted/empty" }));
    expect(await tooSmall.text()).toContain("<Code>EntityTooSmall</Code>");
    const tampered = postForm(new TextEncoder().encode("x"), { key: "posted/tampered" });
    tampered.set("x-amz-signature", "0".repeat(64));
    const forged = await post(tampered);
    expect(forged.status).toBe(403);
    expect(await forged.text()).toContain("<Code>SignatureDoesNotMatch</Code>");
    const anonymous = new FormData();
    anonymous.append("key", "posted/anon");
    anonymous.append("file", new Blob(["x"]), "x");
    const refused = await post(anonymous);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("<Code>AccessDenied</Code>");
    // The file's size is reckoned from Content-Length: a form that does not end with CRLF after its closing boundary is refused.
    const encoded = new Response(postForm(new TextEncoder().encode("no crlf"), { key: "posted/no-crlf" }));
    const contentType = encoded.headers.get("content-type") ?? ""; // Bun drops it once the body is read
    const bytes = new Uint8Array(await encoded.arrayBuffer());
    expect(Buffer.from(bytes.subarray(-2)).toString()).toBe("\r\n");
    const cut = await fetch(`${endpoint}/${bucket}`, { method: "POST", body: bytes.subarray(0, -2), headers: { "content-type": contentType }, tls: { ca: caPem } });
    const cutText = await cut.text();
    expect(cutText).toContain("<Code>MalformedPOSTRequest</Code>");
    expect(cut.status).toBe(400);
    for (const key of ["posted/late", "posted/big", "posted/empty", "posted/tampered", "posted/anon", "posted/no-crlf"]) {
      expect((await errorOf(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })))).$metadata.httpStatusCode).toBe(404);
    }
  }, 60_000);
});
