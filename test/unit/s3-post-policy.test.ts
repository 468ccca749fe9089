// The POST policy check: a policy signed as browsers' forms are (SigV4 of its base64), each
// condition kind, expiry, the credential's region, and the fields a policy must name.
import { describe, expect, test } from "bun:test";
import { deriveSigningKey, hmacHex } from "../../src/s3/sigv4.ts";
import { verifyPostPolicy } from "../../src/s3/post-policy.ts";
import { S3Error } from "../../src/s3/errors.ts";

const accessKey = "AKIDPOSTTEST";
const secret = "post-policy-secret-0123456789";
const region = "us-east-1";
const nowMs = Date.UTC(2025, 0, 15, 12, 0, 0);
const lookup = async (id: string) => (id === accessKey ? secret : undefined);

function form(conditions: unknown[], extra: Record<string, string> = {}, options: { expiration?: string; signRegion?: string; secretKey?: string } = {}): Map<string, string> {
  const credential = `${accessKey}/20250115/${options.signRegion ?? region}/s3/aws4_request`;
  const base = { key: "up/a.txt", "x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-credential": credential, "x-amz-date": "20250115T115900Z", ...extra };
  const policy = Buffer.from(
    JSON.stringify({
      expiration: options.expiration ?? "2025-01-15T13:00:00.000Z",
      conditions: [{ bucket: "photos" }, ["starts-with", "$key", "up/"], { "x-amz-algorithm": "AWS4-HMAC-SHA256" }, { "x-amz-credential": credential }, { "x-amz-date": "20250115T115900Z" }, ...conditions],
    }),
  ).toString("base64");
  const signature = hmacHex(deriveSigningKey(options.secretKey ?? secret, "20250115", options.signRegion ?? region, "s3"), policy);
  return new Map(Object.entries({ ...base, policy, "x-amz-signature": signature }));
}

async function refusal(work: Promise<unknown>): Promise<S3Error> {
  try {
    await work;
  } catch (error) {
    if (error instanceof S3Error) return error;
    throw error;
  }
  throw new Error("the policy was accepted; it should have been refused");
}

const options = { bucket: "photos", region, nowMs };

describe("verifyPostPolicy", () => {
  test("a signed policy whose conditions hold: the key and the length range", async () => {
    const verified = await verifyPostPolicy(form([["content-length-range", 1, 1024], ["eq", "$Content-Type", "text/plain"]], { "content-type": "text/plain" }), lookup, options);
    expect(verified).toEqual({ accessKey, lengthRange: { min: 1, max: 1024 } });
  });

  test("a wrong secret is SignatureDoesNotMatch; an unknown key InvalidAccessKeyId", async () => {
    expect((await refusal(verifyPostPolicy(form([], {}, { secretKey: "other" }), lookup, options))).s3Code).toBe("SignatureDoesNotMatch");
    expect((await refusal(verifyPostPolicy(form([]), async () => undefined, options))).s3Code).toBe("InvalidAccessKeyId");
  });

  test("a tampered policy no longer matches its signature", async () => {
    const fields = form([]);
    const policy = JSON.parse(Buffer.from(fields.get("policy") ?? "", "base64").toString()) as { expiration: string };
    policy.expiration = "2030-01-01T00:00:00.000Z";
    fields.set("policy", Buffer.from(JSON.stringify(policy)).toString("base64"));
    expect((await refusal(verifyPostPolicy(fields, lookup, options))).s3Code).toBe("SignatureDoesNotMatch");
  });

  test("expired by a ms: AccessDenied, Policy expired; at its expiration, accepted", async () => {
    const expired = await refusal(verifyPostPolicy(form([], {}, { expiration: "2025-01-15T11:59:59.999Z" }), lookup, options));
    expect(expired.s3Code).toBe("AccessDenied");
    expect(expired.message).toContain("Policy expired");
    await verifyPostPolicy(form([], {}, { expiration: "2025-01-15T12:00:00.000Z" }), lookup, options);
  });

  test("another region: the region expected, with <Region>", async () => {
    const error = await refusal(verifyPostPolicy(form([], {}, { signRegion: "eu-west-1" }), lookup, options));
    expect(error.message).toContain("the region 'eu-west-1' is wrong; expecting 'us-east-1'");
    expect(error.fields.Region).toBe(region);
  });

  test("a condition that fails, another bucket, a field no condition names: AccessDenied", async () => {
    const wrongKey = form([]);
    wrongKey.set("key", "elsewhere/a.txt");
    // the key is not covered by the signature (it is a field), so the condition catches it
    expect((await refusal(verifyPostPolicy(wrongKey, lookup, options))).message).toContain('["starts-with", "$key", "up/"]');
    expect((await refusal(verifyPostPolicy(form([]), lookup, { ...options, bucket: "other" }))).message).toContain("$bucket");
    const extra = await refusal(verifyPostPolicy(form([], { "x-amz-meta-colour": "blue" }), lookup, options));
    expect(extra.message).toContain("Extra input fields: x-amz-meta-colour");
    await verifyPostPolicy(form([["starts-with", "$x-amz-meta-colour", ""]], { "x-amz-meta-colour": "blue", "x-ignore-me": "1" }), lookup, options);
  });

  test("no policy or signature: AccessDenied (anonymous POST is refused); a policy that is not JSON: InvalidArgument", async () => {
    const fields = form([]);
    fields.delete("x-amz-signature");
    expect((await refusal(verifyPostPolicy(fields, lookup, options))).s3Code).toBe("AccessDenied");
    const garbage = form([]);
    garbage.set("policy", "not base64 json");
    garbage.set("x-amz-signature", hmacHex(deriveSigningKey(secret, "20250115", region, "s3"), "not base64 json"));
    expect((await refusal(verifyPostPolicy(garbage, lookup, options))).s3Code).toBe("InvalidArgument");
  });
});
