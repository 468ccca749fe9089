// What people type: sizes, durations, addresses, bucket/key paths, and where the CLI looks
// for routers and the SPM.
import { describe, expect, test } from "bun:test";
import { formatBytes, parseDuration, parseSize } from "../../src/lib/size.ts";
import { parseAddress, parseAddressList } from "../../src/net/address.ts";
import { resolveRouters, resolveSpm, upAddresses, defaults } from "../../src/lib/defaults.ts";
import { parseBallPath, parseBucketPrefix, parseTags, parseTreeTarget } from "../../src/commands/ball-path.ts";
import { MictlanxError } from "../../src/lib/errors.ts";

function usage(work: () => unknown): string {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(MictlanxError);
    expect((error as MictlanxError).code).toBe("usage");
    return (error as MictlanxError).message;
  }
  throw new Error("expected a usage error");
}

describe("sizes and durations", () => {
  test("binary and decimal units, any case, bare bytes", () => {
    expect(parseSize("4KiB")).toBe(4096);
    expect(parseSize("1MiB")).toBe(1024 * 1024);
    expect(parseSize("256kb")).toBe(256_000);
    expect(parseSize("10GiB")).toBe(10 * 1024 ** 3);
    expect(parseSize("512")).toBe(512);
    expect(parseSize("1.5KiB")).toBe(1536);
    expect(parseSize(" 2 mib ")).toBe(2 * 1024 * 1024);
  });
  test("nonsense is a usage error that shows the forms", () => {
    expect(usage(() => parseSize("lots"))).toContain("4KiB");
    usage(() => parseSize("-1KiB"));
    usage(() => parseSize("1XB"));
  });
  test("durations", () => {
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("10s")).toBe(10_000);
    expect(parseDuration("2m")).toBe(120_000);
    expect(parseDuration("3")).toBe(3_000);
    usage(() => parseDuration("soon"));
  });
  test("formatBytes", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(100 * 1024 ** 3)).toBe("100 GiB");
  });
});

describe("addresses and defaults", () => {
  test("host:port, lists, IPv6 in brackets; bad ones are usage errors", () => {
    expect(parseAddress("127.0.0.1:7201")).toEqual({ host: "127.0.0.1", port: 7201 });
    expect(parseAddress("[::1]:80")).toEqual({ host: "::1", port: 80 });
    expect(parseAddressList("a:1, b:2")).toEqual([{ host: "a", port: 1 }, { host: "b", port: 2 }]);
    expect(usage(() => parseAddress("localhost"))).toContain("host:port");
    usage(() => parseAddress("a:70000"));
  });
  test("flag, then environment, then the `up` default", () => {
    const up = upAddresses(defaults.upBasePort, defaults.upRouters, defaults.upPeers);
    expect(resolveRouters("x:1", { MICTLANX_ROUTERS: "y:2" })).toBe("x:1");
    expect(resolveRouters(undefined, { MICTLANX_ROUTERS: "y:2" })).toBe("y:2");
    expect(resolveRouters(undefined, {})).toBe(up.routers.join(","));
    expect(resolveSpm(undefined, { MICTLANX_SPM: "s:3" })).toEqual(["s:3"]);
    expect(resolveSpm("a:1, b:2,a:1", { MICTLANX_SPM: "s:3" })).toEqual(["a:1", "b:2"]);
    expect(resolveSpm(undefined, {})).toEqual([up.spm]);
    expect(up).toEqual({ spm: "127.0.0.1:7200", routers: ["127.0.0.1:7201"], peers: ["127.0.0.1:7210", "127.0.0.1:7211", "127.0.0.1:7212"] });
  });
});

describe("bucket/key", () => {
  test("the bucket is before the first slash; the key keeps the rest", () => {
    expect(parseBallPath("photos/2024/cat.jpg")).toEqual({ bucket: "photos", key: "2024/cat.jpg" });
    usage(() => parseBallPath("photos"));
    usage(() => parseBallPath("/cat.jpg"));
    usage(() => parseBallPath("photos/"));
    expect(parseBucketPrefix("photos")).toEqual({ bucket: "photos" });
    expect(parseBucketPrefix("photos/2024/")).toEqual({ bucket: "photos", prefix: "2024/" });
    expect(parseTags(["a=1", "b=x=y"])).toEqual({ a: "1", b: "x=y" });
    usage(() => parseTags(["novalue"]));
  });

  test("a tree's prefix is a directory, as aws s3 cp --recursive takes it: it ends in a slash", () => {
    expect(parseTreeTarget("photos")).toEqual({ bucket: "photos", prefix: "" });
    expect(parseTreeTarget("photos/")).toEqual({ bucket: "photos", prefix: "" });
    expect(parseTreeTarget("photos/2024")).toEqual({ bucket: "photos", prefix: "2024/" });
    expect(parseTreeTarget("photos/2024/")).toEqual({ bucket: "photos", prefix: "2024/" });
    expect(parseTreeTarget("photos/a/b")).toEqual({ bucket: "photos", prefix: "a/b/" });
    usage(() => parseTreeTarget("/2024"));
  });
});

describe("the peer's scrub flags", () => {
  test("--scrub-rate takes a size, and 0 or off turns the scrub off; --scrub-interval has a floor", async () => {
    const { parseScrubInterval, parseScrubRate } = await import("../../src/commands/peer.ts");
    expect(parseScrubRate("8MiB")).toBe(8 * 1024 * 1024);
    expect(parseScrubRate("0")).toBe(0);
    expect(parseScrubRate("off")).toBe(0);
    expect(parseScrubRate(" OFF ")).toBe(0);
    expect(usage(() => parseScrubRate("fast"))).toContain("4KiB");
    expect(parseScrubInterval("1h")).toBe(3_600_000);
    expect(parseScrubInterval("100ms")).toBe(100);
    expect(usage(() => parseScrubInterval("99ms"))).toContain("at least 100ms");
  });
});
