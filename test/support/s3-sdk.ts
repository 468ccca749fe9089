// The AWS SDK for JavaScript as the S3 tests use it: a client of a test VSS's S3 endpoint over
// HTTPS with the VSS's CA (path-style, the SDK's defaults otherwise unchanged), and the S3 error
// a request that should be refused was refused with.
import { readFileSync } from "node:fs";
import { Agent } from "node:https";
import { S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { testCredentials } from "./security.ts";

/** The VSS's CA certificate (credentials name its file). */
export const s3CaPem = readFileSync(testCredentials.ca, "utf8");

export function s3SdkClient(endpoint: string, accessKeyId: string, secretAccessKey: string, region = "us-east-1"): S3Client {
  return new S3Client({ endpoint, region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey }, requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca: s3CaPem }) }) });
}

/** The S3 error `work` failed with; a success, or another kind of failure, fails the test. */
export async function s3ErrorOf(work: Promise<unknown>): Promise<S3ServiceException> {
  try {
    await work;
  } catch (error) {
    if (error instanceof S3ServiceException) return error;
    throw error;
  }
  throw new Error("the request succeeded; it should have been refused");
}
