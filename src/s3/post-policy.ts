// S3's POST policy (PostObject, browser form uploads): the form carries a base64 JSON policy
// (an expiration and conditions on the form's fields) and its SigV4 signature,
//   x-amz-signature = hex(HMAC(signing key of x-amz-credential's date and region, policy base64)),
// so whoever holds an access key can hand a browser a form that uploads only what the policy
// allows. Checked here: the algorithm, the credential's region, the signature, the expiration,
// and every condition (`{"field": "value"}`, ["eq", "$field", v], ["starts-with", "$field", p],
// ["content-length-range", min, max]); every form field but x-amz-signature, policy, file and
// x-ignore-* must be named by a condition, as S3 requires. The length range is handed back for
// the gateway to check against the file's size.
//
// Pure: no I/O but the secret lookup it is given.
import { z } from "zod";
import { deriveSigningKey, hexEqual, hmacHex, parseAmzDate, s3Service, sigv4Algorithm } from "./sigv4.ts";
import { S3Error } from "./errors.ts";

export interface PostPolicyOptions {
  /** The bucket the form was posted to (its `bucket` field, as S3 sees it). */
  bucket: string;
  region: string;
  nowMs: number;
}

export interface VerifiedPolicy {
  accessKey: string;
  /** content-length-range, when the policy has one. */
  lengthRange: { min: number; max: number } | undefined;
}

/** Form fields S3 leaves out of the conditions. */
function exempt(name: string): boolean {
  return name === "x-amz-signature" || name === "policy" || name === "file" || name.startsWith("x-ignore-");
}

const condition = z.union([
  z.record(z.string(), z.string()).refine((value) => Object.keys(value).length === 1, "an exact-match condition names one field"),
  z.tuple([z.enum(["eq", "starts-with"]), z.string(), z.string()]),
  z.tuple([z.literal("content-length-range"), z.number().int().min(0), z.number().int().min(0)]),
]);
const policySchema = z.object({ expiration: z.string(), conditions: z.array(condition) });

function denied(detail: string): S3Error {
  return new S3Error("AccessDenied", `Invalid according to Policy: ${detail}`);
}

/**
 * Checks a PostObject form. `fields`: the form's fields with lower-case names (S3 matches them
 * so), `key` already with ${filename} put in.
 */
export async function verifyPostPolicy(fields: ReadonlyMap<string, string>, lookupSecret: (accessKey: string) => Promise<string | undefined>, options: PostPolicyOptions): Promise<VerifiedPolicy> {
  const field = (name: string) => fields.get(name);
  const policyText = field("policy");
  const signature = field("x-amz-signature");
  if (policyText === undefined || signature === undefined) {
    throw new S3Error("AccessDenied", "A POST upload must carry a signed policy: the policy and x-amz-signature fields (anonymous POST uploads are refused)");
  }
  if (field("x-amz-algorithm") !== sigv4Algorithm) throw new S3Error("InvalidArgument", `x-amz-algorithm must be ${sigv4Algorithm}`);
  const { accessKey, date } = parsePostCredential(field("x-amz-credential") ?? "", options.region);
  const amzDate = field("x-amz-date") ?? "";
  parseAmzDate(amzDate, () => new S3Error("InvalidArgument", `x-amz-date ${JSON.stringify(amzDate.slice(0, 32))} is not of the form 20250101T000000Z`));
  if (amzDate.slice(0, 8) !== date) throw new S3Error("InvalidArgument", `x-amz-credential's date ${date} is not x-amz-date's day ${amzDate.slice(0, 8)}`);
  const secret = await lookupSecret(accessKey);
  if (secret === undefined) throw new S3Error("InvalidAccessKeyId", `The AWS Access Key Id you provided does not exist in our records: ${accessKey} is not a key of this VSS`, { AWSAccessKeyId: accessKey });
  const expected = hmacHex(deriveSigningKey(secret, date, options.region, s3Service), policyText);
  if (!hexEqual(expected, signature)) {
    throw new S3Error("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided: sign the policy field (its base64 as sent) with the key's SigV4 signing key", { AWSAccessKeyId: accessKey, StringToSign: policyText, SignatureProvided: signature });
  }
  const policy = parsePolicy(policyText);
  const expirationMs = Date.parse(policy.expiration);
  if (!Number.isFinite(expirationMs)) throw new S3Error("InvalidArgument", `Invalid Policy: the expiration ${JSON.stringify(policy.expiration.slice(0, 40))} is not an ISO 8601 date`);
  if (options.nowMs > expirationMs) throw denied(`Policy expired (at ${new Date(expirationMs).toISOString()}).`);
  return { accessKey, lengthRange: checkConditions(policy.conditions, fields, options.bucket) };
}

function parsePolicy(text: string): z.infer<typeof policySchema> {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(text, "base64").toString("utf8"));
  } catch {
    throw new S3Error("InvalidArgument", "Invalid Policy: the policy field is not base64 of a JSON document");
  }
  const parsed = policySchema.safeParse(json);
  if (!parsed.success) throw new S3Error("InvalidArgument", `Invalid Policy: ${parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ")}`);
  return parsed.data;
}

function checkConditions(conditions: z.infer<typeof policySchema>["conditions"], fields: ReadonlyMap<string, string>, bucket: string): VerifiedPolicy["lengthRange"] {
  const valueOf = (name: string) => (name === "bucket" ? bucket : (fields.get(name) ?? ""));
  const covered = new Set<string>(["bucket"]);
  let lengthRange: VerifiedPolicy["lengthRange"];
  for (const rule of conditions) {
    if (!Array.isArray(rule)) {
      const [name, value] = Object.entries(rule)[0] ?? ["", ""];
      check(name.toLowerCase(), "eq", value);
    } else if (rule[0] === "content-length-range") {
      lengthRange = { min: rule[1], max: rule[2] };
    } else {
      if (!rule[1].startsWith("$")) throw new S3Error("InvalidArgument", `Invalid Policy: a condition names its field as $name, not ${JSON.stringify(rule[1].slice(0, 64))}`);
      check(rule[1].slice(1).toLowerCase(), rule[0], rule[2]);
    }
  }
  for (const name of fields.keys()) if (!exempt(name) && !covered.has(name)) throw denied(`Extra input fields: ${name} (every form field needs a condition in the policy)`);
  return lengthRange;

  function check(name: string, op: "eq" | "starts-with", value: string): void {
    covered.add(name);
    const actual = valueOf(name);
    const ok = op === "eq" ? actual === value : actual.startsWith(value);
    if (!ok) throw denied(`Policy Condition failed: ["${op}", "$${name}", ${JSON.stringify(value)}] (the form sent ${JSON.stringify(actual.slice(0, 256))})`);
  }
}

/** `AKID/20250101/region/s3/aws4_request` of a POST form, its region this gateway's. */
function parsePostCredential(credential: string, region: string): { accessKey: string; date: string } {
  const parts = credential.split("/");
  const [date, claimedRegion, service, last] = parts.slice(-4);
  const accessKey = parts.slice(0, -4).join("/");
  if (parts.length < 5 || accessKey === "" || !/^[0-9]{8}$/.test(date ?? "") || service !== s3Service || last !== "aws4_request") {
    throw new S3Error("InvalidArgument", 'x-amz-credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/s3/aws4_request"');
  }
  if (claimedRegion !== region) throw new S3Error("AuthorizationQueryParametersError", `Error parsing the X-Amz-Credential parameter; the region '${claimedRegion}' is wrong; expecting '${region}'`, { Region: region });
  return { accessKey, date: date ?? "" };
}
