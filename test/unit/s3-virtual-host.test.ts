// Which bucket a virtual-hosted-style Host names under --s3-domain; path-style otherwise.
import { describe, expect, test } from "bun:test";
import { virtualHostBucket } from "../../src/roles/router/s3/gateway.ts";

describe("virtualHostBucket", () => {
  test("bucket.DOMAIN[:port] names the bucket, dots in it kept, case folded", () => {
    expect(virtualHostBucket("photos.localhost:7280", "localhost")).toBe("photos");
    expect(virtualHostBucket("logs.2025.s3.example.com", "s3.example.com")).toBe("logs.2025");
    expect(virtualHostBucket("Photos.S3.Example.com:443", "s3.example.com.")).toBe("photos");
  });

  test("the domain itself, another host, an address, or no --s3-domain: path-style", () => {
    expect(virtualHostBucket("localhost:7280", "localhost")).toBeUndefined();
    expect(virtualHostBucket("127.0.0.1:7280", "localhost")).toBeUndefined();
    expect(virtualHostBucket("[::1]:7280", "localhost")).toBeUndefined();
    expect(virtualHostBucket("photos.otherlocalhost", "localhost")).toBeUndefined();
    expect(virtualHostBucket("photos.localhost", undefined)).toBeUndefined();
    expect(virtualHostBucket(null, "localhost")).toBeUndefined();
  });
});
