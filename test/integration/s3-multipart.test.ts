// S3 multipart uploads through the real AWS SDK (its defaults: CRC32 on every part, aws-chunked
// trailers) against a real VSS with two routers: parts out of order and in parallel, a
// replaced part, Complete's refusals, Abort freeing the chunks, an upload surviving a router's
// kill -9, and the native `mictlanx get` of the completed object. Every read-back byte-exact.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Agent } from "node:https";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { limits } from "../../src/lib/limits.ts";
import { cli, eventually, kill9, programCommand, spmStatus, startRole, startTestVss, tempDir } from "../support/vss.ts";
import { testCredentials } from "../support/security.ts";
import { randomBytes, seededRandom } from "../support/random.ts";
import { s3ErrorOf } from "../support/s3-sdk.ts";

const { random, seed } = seededRandom("s3-multipart");
const MiB = 1024 * 1024;
const bucket = "mpu";
const caPem = readFileSync(testCredentials.ca, "utf8");
let vss: Awaited<ReturnType<typeof startTestVss>>;

function clientAt(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: testCredentials.accessKey, secretAccessKey: testCredentials.secretKey },
    requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca: caPem }) }),
  });
}
const clients: S3Client[] = [];
function client(router: number): S3Client {
  const made = clients[router];
  if (made !== undefined) return made;
  const url = vss.routers[router]?.s3Url;
  if (url === undefined) throw new Error(`router ${router} printed no S3 endpoint`);
  const fresh = clientAt(url);
  clients[router] = fresh;
  return fresh;
}

beforeAll(async () => {
  vss = await startTestVss({ label: "s3-multipart", routers: 2, routerArgs: ["--s3-port", "0"] });
  await client(0).send(new CreateBucketCommand({ Bucket: bucket }));
}, 90_000);
afterAll(async () => {
  for (const made of clients) made?.destroy();
  await vss?.cleanup();
});

const errorOf = s3ErrorOf;

async function getBytes(key: string, options: { range?: string; partNumber?: number; router?: number } = {}): Promise<Uint8Array> {
  const got = await client(options.router ?? 0).send(new GetObjectCommand({ Bucket: bucket, Key: key, ...(options.range ? { Range: options.range } : {}), ...(options.partNumber ? { PartNumber: options.partNumber } : {}) }));
  return got.Body ? await got.Body.transformToByteArray() : new Uint8Array(0);
}

function md5Hex(bytes: Uint8Array): string {
  return createHash("md5").update(bytes).digest("hex");
}
function multipartEtag(parts: Uint8Array[]): string {
  const md5 = createHash("md5");
  for (const part of parts) md5.update(createHash("md5").update(part).digest());
  return `"${md5.digest("hex")}-${parts.length}"`;
}
function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

async function create(key: string, router = 0, extra: { ContentType?: string; Metadata?: Record<string, string>; ChecksumAlgorithm?: "CRC32" | "SHA256" } = {}): Promise<string> {
  const made = await client(router).send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ...extra }));
  expect(made.UploadId).toBeString();
  return made.UploadId ?? "";
}
async function upload(key: string, uploadId: string, partNumber: number, body: Uint8Array, router = 0): Promise<string> {
  const done = await client(router).send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: body }));
  expect(done.ETag).toBe(`"${md5Hex(body)}"`);
  return done.ETag ?? "";
}
function complete(key: string, uploadId: string, parts: { PartNumber: number; ETag: string }[], router = 0) {
  return client(router).send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
}

/** Chunk records the catalog holds, once nothing is left to collect. */
async function settledChunks(): Promise<number> {
  let chunks = -1;
  await eventually("garbage collected", 30_000, async () => {
    const status = await spmStatus(vss);
    chunks = status.chunks;
    return status.garbage === 0 || `${status.garbage} garbage`;
  });
  return chunks;
}

describe(`S3 multipart uploads (seed ${seed})`, () => {
  const sizes = [5 * MiB, 5 * MiB, 5 * MiB, 3 * MiB + 7];
  const parts = sizes.map((size) => randomBytes(random, size));
  const whole = concat(parts);
  const key = "big/twenty é+&.bin";

  test("~18 MiB in four parts, out of order and in parallel across both routers, one replaced: byte-exact, ETag MD5-of-MD5s-4", async () => {
    const before = await settledChunks();
    const uploadId = await create(key, 0, { ContentType: "application/x-test", Metadata: { origin: "multipart" }, ChecksumAlgorithm: "CRC32" }); // as aws-cli and boto3 now send it
    const wrong = randomBytes(random, 5 * MiB);
    await upload(key, uploadId, 2, wrong, 1); // replaced below: its chunks must go
    const order = [3, 1, 4, 2];
    const etags = await Promise.all(order.map((n, i) => upload(key, uploadId, n, parts[n - 1] ?? new Uint8Array(0), i % 2)));
    const byNumber = order.map((n, i) => ({ PartNumber: n, ETag: etags[i] ?? "" })).sort((a, b) => a.PartNumber - b.PartNumber);
    const listed = await client(1).send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
    expect(listed.Parts?.map((part) => [part.PartNumber, part.Size, part.ETag])).toEqual(byNumber.map((part, i) => [part.PartNumber, sizes[i], part.ETag]));
    const done = await complete(key, uploadId, byNumber);
    expect(done.ETag).toBe(multipartEtag(parts));
    // A retried Complete (its reply lost) succeeds again with the same list, through any router; another list does not.
    expect((await complete(key, uploadId, byNumber, 1)).ETag).toBe(multipartEtag(parts));
    expect((await errorOf(complete(key, uploadId, byNumber.slice(0, 2)))).name).toBe("NoSuchUpload");
    expect(Buffer.from(await getBytes(key)).equals(Buffer.from(whole))).toBe(true);
    expect(Buffer.from(await getBytes(key, { router: 1 })).equals(Buffer.from(whole))).toBe(true);
    const head = await client(0).send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect([head.ContentLength, head.ETag, head.ContentType, head.Metadata?.origin]).toEqual([whole.byteLength, multipartEtag(parts), "application/x-test", "multipart"]);
    // Ranges across the part boundaries (5 MiB, 10 MiB) and the last byte.
    for (const [start, end] of [[5 * MiB - 10, 5 * MiB + 10], [MiB, 11 * MiB], [whole.byteLength - 1, whole.byteLength - 1]] as const) {
      expect(Buffer.from(await getBytes(key, { range: `bytes=${start}-${end}` })).equals(Buffer.from(whole.subarray(start, end + 1)))).toBe(true);
    }
    // ?partNumber: each part's bytes, and how many there are.
    let offset = 0;
    for (const [i, part] of parts.entries()) {
      const got = await client(i % 2).send(new GetObjectCommand({ Bucket: bucket, Key: key, PartNumber: i + 1 }));
      expect([got.PartsCount, got.ContentRange]).toEqual([parts.length, `bytes ${offset}-${offset + part.byteLength - 1}/${whole.byteLength}`]);
      expect(Buffer.from((await got.Body?.transformToByteArray()) ?? []).equals(Buffer.from(part))).toBe(true);
      offset += part.byteLength;
    }
    const headPart = await client(0).send(new HeadObjectCommand({ Bucket: bucket, Key: key, PartNumber: 2 }));
    expect([headPart.ContentLength, headPart.PartsCount]).toEqual([sizes[1], parts.length]);
    expect((await errorOf(getBytes(key, { partNumber: parts.length + 1 }))).name).toBe("InvalidPartNumber");
    // The upload is gone, and so are its parts: only the object's chunks remain.
    expect((await errorOf(client(0).send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId })))).name).toBe("NoSuchUpload");
    const after = await settledChunks();
    expect(after - before).toBe(Math.ceil(whole.byteLength / limits.chunkBytesMax));
  }, 60_000);

  test("the native mictlanx get of the completed object returns the same bytes", async () => {
    const out = join(tempDir("s3-multipart-get"), "out.bin");
    const got = await cli(["get", `${bucket}/${key}`, "-o", out, "--router", vss.routers.map((router) => router.address).join(",")]);
    expect(got.code).toBe(0);
    expect(Buffer.from(readFileSync(out)).equals(Buffer.from(whole))).toBe(true);
  }, 30_000);

  test("UploadPartCopy: ranges of the multipart object (across its 8 MiB chunks) and a whole small object become parts", async () => {
    const small = randomBytes(random, 1000);
    await client(0).send(new PutObjectCommand({ Bucket: bucket, Key: "copy/source small", Body: small }));
    const target = "copy/target";
    const uploadId = await create(target);
    const [from, to] = [4 * MiB + 5, 9 * MiB + 4]; // 5 MiB, over the 8 MiB chunk boundary
    const copied = await client(1).send(new UploadPartCopyCommand({ Bucket: bucket, Key: target, UploadId: uploadId, PartNumber: 1, CopySource: `${bucket}/${encodeURIComponent(key)}`, CopySourceRange: `bytes=${from}-${to}` }));
    const first = whole.subarray(from, to + 1);
    expect(copied.CopyPartResult?.ETag).toBe(`"${md5Hex(first)}"`);
    const second = await client(0).send(new UploadPartCopyCommand({ Bucket: bucket, Key: target, UploadId: uploadId, PartNumber: 2, CopySource: `/${bucket}/copy/source%20small` }));
    expect(second.CopyPartResult?.ETag).toBe(`"${md5Hex(small)}"`);
    expect((await errorOf(client(0).send(new UploadPartCopyCommand({ Bucket: bucket, Key: target, UploadId: uploadId, PartNumber: 3, CopySource: `${bucket}/copy/source%20small`, CopySourceRange: "bytes=0-1000" })))).name).toBe("InvalidRange");
    await complete(target, uploadId, [{ PartNumber: 1, ETag: copied.CopyPartResult?.ETag ?? "" }, { PartNumber: 2, ETag: second.CopyPartResult?.ETag ?? "" }]);
    expect(Buffer.from(await getBytes(target)).equals(Buffer.from(concat([first, small])))).toBe(true);
  }, 60_000);

  test("Complete refuses: EntityTooSmall, InvalidPart, InvalidPartOrder, NoSuchUpload; the upload stays usable", async () => {
    const small = "refusals/small";
    const uploadId = await create(small);
    const first = randomBytes(random, MiB);
    const last = randomBytes(random, 3);
    const etag1 = await upload(small, uploadId, 1, first);
    const etag2 = await upload(small, uploadId, 2, last);
    expect((await errorOf(complete(small, uploadId, [{ PartNumber: 1, ETag: etag1 }, { PartNumber: 2, ETag: etag2 }]))).name).toBe("EntityTooSmall");
    expect((await errorOf(complete(small, uploadId, [{ PartNumber: 1, ETag: `"${"0".repeat(32)}"` }]))).name).toBe("InvalidPart");
    expect((await errorOf(complete(small, uploadId, [{ PartNumber: 3, ETag: etag1 }]))).name).toBe("InvalidPart");
    expect((await errorOf(complete(small, uploadId, [{ PartNumber: 2, ETag: etag2 }, { PartNumber: 1, ETag: etag1 }]))).name).toBe("InvalidPartOrder");
    expect((await errorOf(complete(small, "0".repeat(32), [{ PartNumber: 1, ETag: etag1 }]))).name).toBe("NoSuchUpload");
    expect((await errorOf(complete("refusals/other-key", uploadId, [{ PartNumber: 1, ETag: etag1 }]))).name).toBe("NoSuchUpload");
    // A single part may be of any size: the last part is exempt.
    const done = await complete(small, uploadId, [{ PartNumber: 1, ETag: etag1 }]);
    expect(done.ETag).toBe(multipartEtag([first]));
    expect(Buffer.from(await getBytes(small)).equals(Buffer.from(first))).toBe(true);
  }, 60_000);

  test("grants: read,list may list uploads and parts but not create, upload, complete or abort; a part whose CRC32 is wrong is refused and not kept", async () => {
    const made = await cli(["key", "create", "--bucket", bucket, "--allow", "read,list", "--json", "--spm", vss.spm.address]);
    expect(made.code).toBe(0);
    const reader = JSON.parse(made.stdout) as { accessKey: string; secretKey: string };
    const limited = new S3Client({
      endpoint: vss.routers[0]?.s3Url ?? "",
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: reader.accessKey, secretAccessKey: reader.secretKey },
      requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca: caPem }) }),
    });
    try {
      const grantKey = "grants/object";
      expect((await errorOf(limited.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: grantKey })))).name).toBe("AccessDenied");
      const uploadId = await create(grantKey);
      expect((await errorOf(limited.send(new UploadPartCommand({ Bucket: bucket, Key: grantKey, UploadId: uploadId, PartNumber: 1, Body: new Uint8Array(3) })))).name).toBe("AccessDenied");
      const bad = await errorOf(client(0).send(new UploadPartCommand({ Bucket: bucket, Key: grantKey, UploadId: uploadId, PartNumber: 1, Body: new Uint8Array([1, 2, 3]), ChecksumCRC32: "AAAAAA==" })));
      expect(bad.name).toBe("BadDigest");
      const etag = await upload(grantKey, uploadId, 2, new Uint8Array([4, 5, 6]));
      const listed = await limited.send(new ListPartsCommand({ Bucket: bucket, Key: grantKey, UploadId: uploadId }));
      expect(listed.Parts?.map((part) => part.PartNumber)).toEqual([2]); // the refused part 1 left nothing
      expect((await limited.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: "grants/" }))).Uploads?.map((entry) => entry.UploadId)).toEqual([uploadId]);
      expect((await errorOf(limited.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: grantKey, UploadId: uploadId, MultipartUpload: { Parts: [{ PartNumber: 2, ETag: etag }] } })))).name).toBe("AccessDenied");
      expect((await errorOf(limited.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: grantKey, UploadId: uploadId })))).name).toBe("AccessDenied");
      await client(0).send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: grantKey, UploadId: uploadId }));
    } finally {
      limited.destroy();
    }
  }, 30_000);

  test("part numbers are 1..10000", async () => {
    const uploadId = await create("refusals/numbers");
    for (const bad of [0, limits.s3MultipartPartsMax + 1]) {
      expect((await errorOf(client(0).send(new UploadPartCommand({ Bucket: bucket, Key: "refusals/numbers", UploadId: uploadId, PartNumber: bad, Body: new Uint8Array(1) })))).name).toBe("InvalidArgument");
    }
    await upload("refusals/numbers", uploadId, limits.s3MultipartPartsMax, new Uint8Array([7]));
    await client(0).send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: "refusals/numbers", UploadId: uploadId }));
  }, 30_000);

  test("Abort frees every chunk the upload stored; the object never appears", async () => {
    const before = await settledChunks();
    const abortKey = "aborted/never";
    const uploadId = await create(abortKey);
    await upload(abortKey, uploadId, 1, randomBytes(random, 5 * MiB));
    await upload(abortKey, uploadId, 2, randomBytes(random, 2 * MiB));
    expect((await spmStatus(vss)).chunks).toBeGreaterThan(before);
    await client(1).send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: abortKey, UploadId: uploadId }));
    expect((await errorOf(client(0).send(new UploadPartCommand({ Bucket: bucket, Key: abortKey, UploadId: uploadId, PartNumber: 3, Body: new Uint8Array(1) })))).name).toBe("NoSuchUpload");
    expect((await errorOf(getBytes(abortKey))).name).toBe("NoSuchKey");
    expect(await settledChunks()).toBe(before);
    const listed = await client(0).send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "aborted/" }));
    expect(listed.KeyCount).toBe(0);
  }, 60_000);

  test("the staging bucket is not listed by ListBuckets", async () => {
    const names = (await client(0).send(new ListBucketsCommand({}))).Buckets?.map((listed) => listed.Name) ?? [];
    expect(names).toContain(bucket);
    expect(names.some((name) => name?.startsWith("_"))).toBe(false);
  });

  test("an upload survives a router's kill -9, is listed by ListMultipartUploads, and completes there", async () => {
    const survivor = "restart/survivor.bin";
    const uploadId = await create(survivor, 0);
    const other = await create("restart/other/x", 1);
    const part1 = randomBytes(random, 5 * MiB);
    const part2 = randomBytes(random, 1234);
    const etag1 = await upload(survivor, uploadId, 1, part1, 1);
    const old = vss.routers[0];
    if (old === undefined) throw new Error("no router 0");
    kill9(old);
    await old.exited;
    const restarted = await startRole(old.name, old.args, undefined, programCommand());
    vss.routers[0] = restarted;
    clients[0]?.destroy();
    clients[0] = clientAt(restarted.s3Url ?? "");
    const uploads = await client(0).send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: "restart/" }));
    expect(uploads.Uploads?.map((entry) => [entry.Key, entry.UploadId])).toEqual([["restart/other/x", other], [survivor, uploadId]].sort((a, b) => ((a[0] ?? "") < (b[0] ?? "") ? -1 : 1)));
    const folded = await client(0).send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: "restart/", Delimiter: "/" }));
    expect(folded.CommonPrefixes?.map((entry) => entry.Prefix)).toEqual(["restart/other/"]);
    expect(folded.Uploads?.map((entry) => entry.Key)).toEqual([survivor]);
    const paged = await client(0).send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: "restart/", MaxUploads: 1 }));
    expect([paged.IsTruncated, paged.Uploads?.length, paged.NextKeyMarker]).toEqual([true, 1, "restart/other/x"]);
    const etag2 = await upload(survivor, uploadId, 2, part2, 0);
    const listed = await client(0).send(new ListPartsCommand({ Bucket: bucket, Key: survivor, UploadId: uploadId, MaxParts: 1 }));
    expect([listed.IsTruncated, listed.Parts?.map((part) => part.PartNumber), listed.NextPartNumberMarker]).toEqual([true, [1], "1"]);
    const rest = await client(0).send(new ListPartsCommand({ Bucket: bucket, Key: survivor, UploadId: uploadId, PartNumberMarker: "1" }));
    expect([rest.IsTruncated, rest.Parts?.map((part) => part.PartNumber)]).toEqual([false, [2]]);
    await complete(survivor, uploadId, [{ PartNumber: 1, ETag: etag1 }, { PartNumber: 2, ETag: etag2 }]);
    expect(Buffer.from(await getBytes(survivor, { router: 1 })).equals(Buffer.from(concat([part1, part2])))).toBe(true);
    await client(0).send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: "restart/other/x", UploadId: other }));
    expect((await client(0).send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
  }, 90_000);

  test("an upload past its lifetime (--s3-multipart-lifetime) is garbage-collected with its parts", async () => {
    const before = await settledChunks();
    const old = vss.routers[1];
    if (old === undefined) throw new Error("no router 1");
    kill9(old);
    await old.exited;
    const shortLived = await startRole(old.name, [...old.args, "--s3-multipart-lifetime", "2s"], undefined, programCommand());
    vss.routers[1] = shortLived;
    clients[1]?.destroy();
    clients[1] = clientAt(shortLived.s3Url ?? "");
    const expiring = "expiring/part";
    const uploadId = await create(expiring, 1);
    await upload(expiring, uploadId, 1, randomBytes(random, 2 * MiB), 0);
    expect((await spmStatus(vss)).chunks).toBeGreaterThan(before);
    await eventually("the expired upload is gone", 20_000, async () => ((await client(0).send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).length === 0);
    expect((await errorOf(client(0).send(new ListPartsCommand({ Bucket: bucket, Key: expiring, UploadId: uploadId })))).name).toBe("NoSuchUpload");
    expect(await settledChunks()).toBe(before);
  }, 60_000);

  // Last: it stops every peer.
  test("a Complete whose copy fails answers 200 with an S3 <Error> body, which the SDK raises; the upload stays", async () => {
    const failing = "failing/copy";
    const uploadId = await create(failing);
    const etag = await upload(failing, uploadId, 1, randomBytes(random, 3 * MiB));
    for (const peer of vss.peers) kill9(peer);
    await Promise.all(vss.peers.map((peer) => peer.exited));
    // A client whose transport records the statuses as they came, before the SDK reads the body.
    const handler = new NodeHttpHandler({ httpsAgent: new Agent({ ca: caPem }) });
    const statuses: number[] = [];
    const handle = handler.handle.bind(handler);
    handler.handle = async (...args) => {
      const out = await handle(...args);
      statuses.push(out.response.statusCode);
      return out;
    };
    const watched = new S3Client({ endpoint: vss.routers[0]?.s3Url ?? "", region: "us-east-1", forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: testCredentials.accessKey, secretAccessKey: testCredentials.secretKey }, requestHandler: handler });
    const refused = await errorOf(watched.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: failing, UploadId: uploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: etag }] } })));
    watched.destroy();
    expect(statuses).toEqual([200]);
    expect(refused.$metadata.httpStatusCode).toBe(503); // how the SDK marks a 200 whose body is an <Error>
    expect(refused.name).toBe("ServiceUnavailable");
    expect((await errorOf(getBytes(failing))).name).toBe("NoSuchKey");
    const listed = await client(0).send(new ListPartsCommand({ Bucket: bucket, Key: failing, UploadId: uploadId }));
    expect(listed.Parts?.map((part) => part.PartNumber)).toEqual([1]);
  }, 60_000);
});
