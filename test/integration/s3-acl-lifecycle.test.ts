// Canned ACLs and lifecycle rules on the router's S3 endpoint, against a real VSS: set with the
// AWS SDK (its defaults), checked anonymously with plain fetch (no signature at all), both ways.
// Lifecycle expiration end to end with a short `spm --lifecycle-every`.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketLifecycleCommand,
  GetBucketAclCommand,
  GetBucketLifecycleConfigurationCommand,
  GetObjectAclCommand,
  ListObjectsV2Command,
  PutBucketAclCommand,
  PutBucketLifecycleConfigurationCommand,
  PutObjectAclCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { Sha256 } from "@smithy/core/checksum";
import { SignatureV4 } from "@smithy/signature-v4";
import { limits } from "../../src/lib/limits.ts";
import { cli, eventually, fastSpmArgs, kill9, startTestVss } from "../support/vss.ts";
import { testCredentials } from "../support/security.ts";
import { s3ErrorOf, s3SdkClient } from "../support/s3-sdk.ts";

let vss: Awaited<ReturnType<typeof startTestVss>>;
let endpoint: string;
let s3: S3Client;
const caPem = readFileSync(testCredentials.ca, "utf8");
const allUsers = "http://acs.amazonaws.com/groups/global/AllUsers";

function clientWith(accessKeyId: string, secretAccessKey: string): S3Client {
  return s3SdkClient(endpoint, accessKeyId, secretAccessKey);
}

beforeAll(async () => {
  vss = await startTestVss({ label: "s3-acl", routers: 2, spmArgs: [...fastSpmArgs, "--lifecycle-every", "300ms"], routerArgs: ["--s3-port", "0"] });
  const url = vss.routers[0]?.s3Url;
  if (url === undefined) throw new Error(`the router printed no S3 endpoint: ${vss.routers[0]?.readyLine}`);
  endpoint = url;
  s3 = clientWith(testCredentials.accessKey, testCredentials.secretKey);
}, 60_000);
afterAll(async () => {
  s3?.destroy();
  await vss?.cleanup();
});

const errorOf = s3ErrorOf;

/** A request with no Authorization and no X-Amz-Signature: anonymous (to router 0, or the one given). */
function anonymous(method: string, path: string, body?: string, at: string = endpoint): Promise<Response> {
  return fetch(new URL(path, at), { method, ...(body === undefined ? {} : { body }), tls: { ca: caPem } });
}

/** A request signed by the admin key (its payload's sha256 signed), sent as it is with fetch. */
async function signedFetch(method: string, path: string, headers: Record<string, string>, body: string): Promise<Response> {
  const url = new URL(path, endpoint);
  const signer = new SignatureV4({ credentials: { accessKeyId: testCredentials.accessKey, secretAccessKey: testCredentials.secretKey }, region: "us-east-1", service: "s3", sha256: Sha256, uriEscapePath: false });
  const query = Object.fromEntries(url.searchParams);
  const signed = await signer.sign({ method, protocol: "https:", hostname: url.hostname, port: Number(url.port), path: url.pathname, query, headers: { host: url.host, ...headers }, body });
  return fetch(url, { method, headers: signed.headers, body, tls: { ca: caPem } });
}

async function expectDenied(response: Response): Promise<void> {
  expect(response.status).toBe(403);
  if (response.headers.get("content-length") !== "0" && response.status === 403) {
    const text = await response.text();
    if (text !== "") expect(text).toContain("<Code>AccessDenied</Code>");
  }
}

describe("canned ACLs", () => {
  test("a private bucket (the default) and its objects refuse every anonymous request", async () => {
    await s3.send(new CreateBucketCommand({ Bucket: "closed" }));
    await s3.send(new PutObjectCommand({ Bucket: "closed", Key: "a", Body: "secret" }));
    await expectDenied(await anonymous("GET", "/closed/a"));
    await expectDenied(await anonymous("HEAD", "/closed/a"));
    await expectDenied(await anonymous("GET", "/closed?list-type=2"));
    await expectDenied(await anonymous("GET", "/closed/missing")); // not NoSuchKey: an anonymous caller learns nothing
    await expectDenied(await anonymous("GET", "/"));
    await expectDenied(await anonymous("PUT", "/closed/b", "x"));
    await expectDenied(await anonymous("PUT", "/anon-made"));
    const acl = await s3.send(new GetBucketAclCommand({ Bucket: "closed" }));
    expect(acl.Grants?.map((grant) => grant.Permission)).toEqual(["FULL_CONTROL"]);
  }, 30_000);

  test("a public-read object may be read and headed anonymously, byte-exact; nothing else of it", async () => {
    const body = new Uint8Array(randomBytes(70_001));
    await s3.send(new CreateBucketCommand({ Bucket: "objects" }));
    await s3.send(new PutObjectCommand({ Bucket: "objects", Key: "open é+&", Body: body, ACL: "public-read" }));
    await s3.send(new PutObjectCommand({ Bucket: "objects", Key: "closed", Body: "no" }));
    const got = await anonymous("GET", `/objects/${encodeURIComponent("open é+&")}`);
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(Buffer.from(body))).toBe(true);
    const head = await anonymous("HEAD", `/objects/${encodeURIComponent("open é+&")}`);
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(body.byteLength));
    await expectDenied(await anonymous("GET", "/objects/closed"));
    await expectDenied(await anonymous("PUT", `/objects/${encodeURIComponent("open é+&")}`, "overwrite"));
    await expectDenied(await anonymous("DELETE", `/objects/${encodeURIComponent("open é+&")}`));
    await expectDenied(await anonymous("GET", `/objects/${encodeURIComponent("open é+&")}?acl`));
    await expectDenied(await anonymous("GET", "/objects?list-type=2")); // the bucket is private
    const acl = await s3.send(new GetObjectAclCommand({ Bucket: "objects", Key: "open é+&" }));
    expect(acl.Grants?.map((grant) => `${grant.Grantee?.Type} ${grant.Grantee?.URI ?? ""} ${grant.Permission}`).sort()).toEqual(["CanonicalUser  FULL_CONTROL", `Group ${allUsers} READ`]);
  }, 30_000);

  test("PutObjectAcl opens and closes an existing object; a new version starts private", async () => {
    await s3.send(new PutObjectCommand({ Bucket: "objects", Key: "toggled", Body: "v1" }));
    await expectDenied(await anonymous("GET", "/objects/toggled"));
    await s3.send(new PutObjectAclCommand({ Bucket: "objects", Key: "toggled", ACL: "public-read" }));
    const open = await anonymous("GET", "/objects/toggled");
    expect(open.status).toBe(200);
    expect(await open.text()).toBe("v1");
    await s3.send(new PutObjectAclCommand({ Bucket: "objects", Key: "toggled", ACL: "private" }));
    await expectDenied(await anonymous("GET", "/objects/toggled"));
    await s3.send(new PutObjectAclCommand({ Bucket: "objects", Key: "toggled", ACL: "public-read" }));
    await s3.send(new PutObjectCommand({ Bucket: "objects", Key: "toggled", Body: "v2" })); // no ACL: private
    await expectDenied(await anonymous("GET", "/objects/toggled"));
    expect((await errorOf(s3.send(new PutObjectAclCommand({ Bucket: "objects", Key: "not-there", ACL: "public-read" })))).name).toBe("NoSuchKey");
  }, 30_000);

  test("CopyObject takes x-amz-acl; a copy without one is private even from a public-read source", async () => {
    await s3.send(new PutObjectCommand({ Bucket: "objects", Key: "copy-source", Body: "copied bytes", ACL: "public-read" }));
    await s3.send(new CopyObjectCommand({ Bucket: "objects", Key: "copy-plain", CopySource: "objects/copy-source" }));
    await expectDenied(await anonymous("GET", "/objects/copy-plain"));
    await s3.send(new CopyObjectCommand({ Bucket: "objects", Key: "copy-open", CopySource: "objects/copy-source", ACL: "public-read" }));
    const open = await anonymous("GET", "/objects/copy-open");
    expect(open.status).toBe(200);
    expect(await open.text()).toBe("copied bytes");
  }, 30_000);

  test("a public-read bucket may be listed anonymously, not read or written; PutBucketAcl private closes it within s3BucketAclCacheMs", async () => {
    await s3.send(new CreateBucketCommand({ Bucket: "listed", ACL: "public-read" }));
    await s3.send(new PutObjectCommand({ Bucket: "listed", Key: "dir/one", Body: "1" }));
    const listing = await anonymous("GET", "/listed?list-type=2&prefix=dir/");
    expect(listing.status).toBe(200);
    expect(await listing.text()).toContain("<Key>dir/one</Key>");
    const v1 = await anonymous("GET", "/listed?prefix=dir/&delimiter=/");
    expect(v1.status).toBe(200);
    expect(await v1.text()).toContain("<Prefix>dir/</Prefix>");
    await expectDenied(await anonymous("GET", "/listed?versions")); // only ListObjects V1 and V2 are opened
    await expectDenied(await anonymous("GET", "/listed/dir/one")); // the bucket's ACL opens listing only
    await expectDenied(await anonymous("PUT", "/listed/dir/two", "2"));
    await expectDenied(await anonymous("DELETE", "/listed"));
    await expectDenied(await anonymous("GET", "/listed?acl"));
    const acl = await s3.send(new GetBucketAclCommand({ Bucket: "listed" }));
    expect(acl.Grants?.some((grant) => grant.Grantee?.URI === allUsers && grant.Permission === "READ")).toBe(true);
    const started = Date.now();
    await s3.send(new PutBucketAclCommand({ Bucket: "listed", ACL: "private" }));
    await eventually("anonymous listing is refused again", limits.s3BucketAclCacheMs + 5_000, async () => (await anonymous("GET", "/listed?list-type=2")).status === 403);
    expect(Date.now() - started).toBeLessThan(limits.s3BucketAclCacheMs + 5_000);
  }, 30_000);

  test("an AccessControlPolicy body is taken when it says a canned ACL, else NotImplemented; other canned ACLs are NotImplemented", async () => {
    await s3.send(new CreateBucketCommand({ Bucket: "policies" }));
    const owner = (await s3.send(new GetBucketAclCommand({ Bucket: "policies" }))).Owner;
    const ownerGrant = { Grantee: { Type: "CanonicalUser" as const, ID: owner?.ID ?? "x" }, Permission: "FULL_CONTROL" as const };
    const publicGrant = { Grantee: { Type: "Group" as const, URI: allUsers }, Permission: "READ" as const };
    await s3.send(new PutBucketAclCommand({ Bucket: "policies", AccessControlPolicy: { Owner: owner, Grants: [ownerGrant, publicGrant] } }));
    expect((await anonymous("GET", "/policies?list-type=2")).status).toBe(200);
    const named = await errorOf(s3.send(new PutBucketAclCommand({ Bucket: "policies", AccessControlPolicy: { Owner: owner, Grants: [ownerGrant, { Grantee: { Type: "CanonicalUser", ID: "someone-else" }, Permission: "READ" }] } })));
    expect(named.name).toBe("NotImplemented");
    expect(named.$metadata.httpStatusCode).toBe(501);
    expect((await errorOf(s3.send(new PutBucketAclCommand({ Bucket: "policies", ACL: "public-read-write" })))).name).toBe("NotImplemented");
    expect((await errorOf(s3.send(new CreateBucketCommand({ Bucket: "authenticated", ACL: "authenticated-read" })))).name).toBe("NotImplemented");
    expect((await errorOf(s3.send(new PutObjectCommand({ Bucket: "policies", Key: "k", Body: "b", ACL: "public-read-write" })))).name).toBe("NotImplemented");
    expect((await errorOf(s3.send(new GetBucketAclCommand({ Bucket: "no-such-bucket" })))).name).toBe("NoSuchBucket");
  }, 30_000);

  test("a PutBucketAcl body of s3SettingsBodyBytesMax bytes is read, one byte more is refused; a body whose Content-MD5 differs is BadDigest", async () => {
    await s3.send(new CreateBucketCommand({ Bucket: "bodies" }));
    const grants = `<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>o</ID></Grantee><Permission>FULL_CONTROL</Permission></Grant><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>${allUsers}</URI></Grantee><Permission>READ</Permission></Grant>`;
    const document = `<AccessControlPolicy><Owner><ID>o</ID></Owner><AccessControlList>${grants}</AccessControlList></AccessControlPolicy>`;
    const padded = (bytes: number) => `${document}${" ".repeat(bytes - document.length)}`;
    const atBound = await signedFetch("PUT", "/bodies?acl", { "content-type": "application/xml" }, padded(limits.s3SettingsBodyBytesMax));
    expect(atBound.status).toBe(200);
    expect((await anonymous("GET", "/bodies?list-type=2")).status).toBe(200);
    const over = await signedFetch("PUT", "/bodies?acl", { "content-type": "application/xml" }, padded(limits.s3SettingsBodyBytesMax + 1));
    expect(over.status).toBe(400);
    expect(await over.text()).toContain("<Code>MaxMessageLengthExceeded</Code>");
    const privateDocument = document.replace(/<Grant><Grantee [^>]*xsi:type="Group">.*?<\/Grant>/, "");
    expect(privateDocument).not.toContain(allUsers);
    const badDigest = await signedFetch("PUT", "/bodies?acl", { "content-type": "application/xml", "content-md5": "1B2M2Y8AsgTpgAmY7PhCfg==" }, privateDocument);
    expect(badDigest.status).toBe(400);
    expect(await badDigest.text()).toContain("<Code>BadDigest</Code>");
    expect((await anonymous("GET", "/bodies?list-type=2")).status).toBe(200); // nothing changed
  }, 30_000);

  test("PutBucketAcl and PutObjectAcl need write, GetBucketAcl and GetObjectAcl read", async () => {
    await s3.send(new CreateBucketCommand({ Bucket: "granted" }));
    await s3.send(new PutObjectCommand({ Bucket: "granted", Key: "k", Body: "b" }));
    const made = await cli(["key", "create", "--bucket", "granted", "--allow", "list", "--json", "--spm", vss.spm.address]);
    expect(made.code).toBe(0);
    const lister = JSON.parse(made.stdout) as { accessKey: string; secretKey: string };
    const limited = clientWith(lister.accessKey, lister.secretKey);
    const refusals: Array<() => Promise<unknown>> = [
      () => limited.send(new GetBucketAclCommand({ Bucket: "granted" })),
      () => limited.send(new PutBucketAclCommand({ Bucket: "granted", ACL: "public-read" })),
      () => limited.send(new GetObjectAclCommand({ Bucket: "granted", Key: "k" })),
      () => limited.send(new PutObjectAclCommand({ Bucket: "granted", Key: "k", ACL: "public-read" })),
      () => limited.send(new PutBucketLifecycleConfigurationCommand({ Bucket: "granted", LifecycleConfiguration: { Rules: [{ ID: "r", Status: "Enabled", Filter: { Prefix: "" }, Expiration: { Days: 1 } }] } })),
    ];
    for (const refused of refusals) expect((await errorOf(refused())).name).toBe("AccessDenied");
    limited.destroy();
    await expectDenied(await anonymous("GET", "/granted?list-type=2"));
  }, 30_000);
});

describe("ACLs on every router", () => {
  test("set through one router, seen by the other: an object's at once, a bucket's within s3BucketAclCacheMs; kept across an SPM restart", async () => {
    const other = vss.routers[1]?.s3Url;
    if (other === undefined) throw new Error("the second router printed no S3 endpoint");
    await s3.send(new CreateBucketCommand({ Bucket: "shared", ACL: "public-read" }));
    await s3.send(new PutObjectCommand({ Bucket: "shared", Key: "k", Body: "shared body", ACL: "public-read" }));
    expect((await anonymous("GET", "/shared?list-type=2", undefined, other)).status).toBe(200); // router 1 caches "public-read" now
    const read = await anonymous("GET", "/shared/k", undefined, other);
    expect(await read.text()).toBe("shared body");
    await s3.send(new PutObjectAclCommand({ Bucket: "shared", Key: "k", ACL: "private" }));
    await expectDenied(await anonymous("GET", "/shared/k", undefined, other)); // objects' ACLs are never cached
    const closedAt = Date.now();
    await s3.send(new PutBucketAclCommand({ Bucket: "shared", ACL: "private" }));
    await eventually("router 1 refuses the anonymous listing", limits.s3BucketAclCacheMs + 3_000, async () => (await anonymous("GET", "/shared?list-type=2", undefined, other)).status === 403);
    expect(Date.now() - closedAt).toBeLessThanOrEqual(limits.s3BucketAclCacheMs + 3_000);
    await s3.send(new PutBucketAclCommand({ Bucket: "shared", ACL: "public-read" }));
    await s3.send(new PutObjectAclCommand({ Bucket: "shared", Key: "k", ACL: "public-read" }));
    kill9(vss.spm);
    await vss.spm.exited;
    await vss.startSpm();
    await eventually("after the SPM's restart the object is still public-read", 30_000, async () => (await anonymous("GET", "/shared/k")).status === 200);
    const acl = await s3.send(new GetBucketAclCommand({ Bucket: "shared" }));
    expect(acl.Grants?.some((grant) => grant.Grantee?.URI === allUsers)).toBe(true);
    // The tests after this one write: wait until the peers have reported to the new SPM.
    await eventually("the peers are back with the restarted SPM", 30_000, async () => {
      try {
        await s3.send(new PutObjectCommand({ Bucket: "shared", Key: "after-restart", Body: "x" }));
        return true;
      } catch (error) {
        return error instanceof Error ? error.message : String(error);
      }
    });
  }, 60_000);
});

describe("lifecycle rules", () => {
  test("Put, Get and Delete BucketLifecycleConfiguration; what is not built is NotImplemented", async () => {
    await s3.send(new CreateBucketCommand({ Bucket: "rules" }));
    expect((await errorOf(s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: "rules" })))).name).toBe("NoSuchLifecycleConfiguration");
    const rules = [
      { ID: "logs", Status: "Enabled" as const, Filter: { Prefix: "logs/" }, Expiration: { Days: 30 } },
      { ID: "dated", Status: "Disabled" as const, Filter: { Prefix: "tmp/" }, Expiration: { Date: new Date("2030-01-01T00:00:00Z") } },
      { ID: "uploads", Status: "Enabled" as const, Filter: { Prefix: "" }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } },
    ];
    await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: "rules", LifecycleConfiguration: { Rules: rules } }));
    const got = await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: "rules" }));
    expect(got.Rules?.map((rule) => [rule.ID, rule.Status, rule.Filter?.Prefix, rule.Expiration?.Days, rule.Expiration?.Date?.toISOString(), rule.AbortIncompleteMultipartUpload?.DaysAfterInitiation])).toEqual([
      ["logs", "Enabled", "logs/", 30, undefined, undefined],
      ["dated", "Disabled", "tmp/", undefined, "2030-01-01T00:00:00.000Z", undefined],
      ["uploads", "Enabled", "", undefined, undefined, 7],
    ]);
    const transition = await errorOf(s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: "rules", LifecycleConfiguration: { Rules: [{ ID: "t", Status: "Enabled", Filter: { Prefix: "" }, Transitions: [{ Days: 1, StorageClass: "GLACIER" }] }] } })));
    expect(transition.name).toBe("NotImplemented");
    const tagged = await errorOf(s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: "rules", LifecycleConfiguration: { Rules: [{ ID: "t", Status: "Enabled", Filter: { Tag: { Key: "a", Value: "b" } }, Expiration: { Days: 1 } }] } })));
    expect(tagged.name).toBe("NotImplemented");
    expect((await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: "rules" }))).Rules?.length).toBe(3); // a refused put changed nothing
    await s3.send(new DeleteBucketLifecycleCommand({ Bucket: "rules" }));
    expect((await errorOf(s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: "rules" })))).name).toBe("NoSuchLifecycleConfiguration");
  }, 30_000);

  test("an Expiration Date in the past: the SPM deletes the objects under the rule's prefix, the others stay", async () => {
    await s3.send(new CreateBucketCommand({ Bucket: "expiring" }));
    const keep = ["keep/a", "oldish", "other/old/b"];
    const expire = ["old/a", "old/b/c", "old/é"];
    for (const key of [...keep, ...expire]) await s3.send(new PutObjectCommand({ Bucket: "expiring", Key: key, Body: `body of ${key}` }));
    await s3.send(new PutBucketLifecycleConfigurationCommand({
      Bucket: "expiring",
      LifecycleConfiguration: { Rules: [
        { ID: "past", Status: "Enabled", Filter: { Prefix: "old/" }, Expiration: { Date: new Date("2020-01-01T00:00:00Z") } },
        { ID: "off", Status: "Disabled", Filter: { Prefix: "keep/" }, Expiration: { Date: new Date("2020-01-01T00:00:00Z") } },
        { ID: "future", Status: "Enabled", Filter: { Prefix: "other/" }, Expiration: { Days: 365 } },
      ] },
    }));
    const keys = async () => ((await s3.send(new ListObjectsV2Command({ Bucket: "expiring" }))).Contents ?? []).map((object) => object.Key ?? "").sort();
    await eventually("the expired objects are gone", 20_000, async () => {
      const now = await keys();
      return now.join(",") === [...keep].sort().join(",") || now.join(",");
    });
    expect(await keys()).toEqual([...keep].sort());
  }, 40_000);
});
