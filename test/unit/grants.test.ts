// Grants at their edges: exact names against prefixes and `*`, the flags' defaults, what is
// refused (and how it is said), duplicates folded, the bounds on grants and pattern length.
import { describe, expect, test } from "bun:test";
import {
  bucketPatternProblem,
  describeGrants,
  grantSchema,
  grantsAllow,
  grantsSchema,
  normalizeGrants,
  parseGrantFlags,
  patternMatches,
  type Grant,
} from "../../src/lib/grants.ts";
import { limits } from "../../src/lib/limits.ts";
import { thrown } from "../support/errors.ts";

describe("bucket patterns", () => {
  test("an exact name matches only itself, not its prefixes nor longer names", () => {
    expect(patternMatches("photos", "photos")).toBe(true);
    expect(patternMatches("photos", "photo")).toBe(false);
    expect(patternMatches("photos", "photos2")).toBe(false);
    expect(patternMatches("photos", "Photos")).toBe(false);
  });

  test("a prefix and * matches every bucket that starts with the prefix, the prefix itself included", () => {
    expect(patternMatches("logs-*", "logs-2024")).toBe(true);
    expect(patternMatches("logs-*", "logs-")).toBe(true);
    expect(patternMatches("logs-*", "logs")).toBe(false);
    expect(patternMatches("logs-*", "xlogs-1")).toBe(false);
  });

  test("* alone matches every bucket", () => {
    for (const bucket of ["a", "photos", "logs-1", "ß"]) expect(patternMatches("*", bucket)).toBe(true);
  });

  test("a * anywhere but the end, an empty pattern, control characters and bidi controls are refused", () => {
    expect(bucketPatternProblem("a*b")).toContain("a * may only end");
    expect(bucketPatternProblem("**")).toContain("a * may only end");
    expect(bucketPatternProblem("")).toContain("empty");
    expect(bucketPatternProblem("pho\u001btos")).toContain("U+001B");
    expect(bucketPatternProblem("logs\u202e*")).toContain("U+202E");
    for (const good of ["photos", "logs-*", "*", "ü-*"]) expect(bucketPatternProblem(good)).toBeUndefined();
  });

  test(`a pattern is at most grantBucketPatternBytesMax (${limits.grantBucketPatternBytesMax}) bytes, its * counted`, () => {
    const max = limits.grantBucketPatternBytesMax;
    expect(bucketPatternProblem("b".repeat(max))).toBeUndefined();
    expect(bucketPatternProblem(`${"b".repeat(max - 1)}*`)).toBeUndefined();
    expect(bucketPatternProblem("b".repeat(max + 1))).toContain(`at most ${max} bytes`);
    expect(bucketPatternProblem(`${"b".repeat(max)}*`)).toContain(`at most ${max} bytes`);
    expect(bucketPatternProblem("é".repeat(max / 2 + 1))).toContain(`this one is ${max + 2}`); // bytes, not characters
  });
});

describe("grantsAllow", () => {
  const grants: Grant[] = [
    { bucket: "photos", allow: ["read", "list"] },
    { bucket: "logs-*", allow: ["write"] },
  ];

  test("an action is allowed where a matching grant allows it, and nowhere else", () => {
    expect(grantsAllow(grants, "photos", "read")).toBe(true);
    expect(grantsAllow(grants, "photos", "list")).toBe(true);
    expect(grantsAllow(grants, "photos", "write")).toBe(false);
    expect(grantsAllow(grants, "photos", "delete")).toBe(false);
    expect(grantsAllow(grants, "logs-7", "write")).toBe(true);
    expect(grantsAllow(grants, "logs-7", "read")).toBe(false);
    expect(grantsAllow(grants, "photos2", "read")).toBe(false);
    expect(grantsAllow(grants, "other", "list")).toBe(false);
  });

  test("grants add up: an exact grant and a wider one each give their own actions", () => {
    const layered: Grant[] = [
      { bucket: "*", allow: ["read"] },
      { bucket: "scratch", allow: ["write", "delete"] },
    ];
    expect(grantsAllow(layered, "anything", "read")).toBe(true);
    expect(grantsAllow(layered, "anything", "write")).toBe(false);
    expect(grantsAllow(layered, "scratch", "delete")).toBe(true);
    expect(grantsAllow(layered, "scratch", "read")).toBe(true);
  });

  test("no grants allow nothing", () => {
    expect(grantsAllow([], "photos", "read")).toBe(false);
  });
});

describe("parseGrantFlags", () => {
  test("no --bucket is every bucket, no --allow is read,list", () => {
    expect(parseGrantFlags([])).toEqual([{ bucket: "*", allow: ["read", "list"] }]);
    expect(parseGrantFlags(["photos"])).toEqual([{ bucket: "photos", allow: ["read", "list"] }]);
    expect(parseGrantFlags([], "write")).toEqual([{ bucket: "*", allow: ["write"] }]);
  });

  test("each --bucket gets the same actions, in canonical order, repeats folded", () => {
    expect(parseGrantFlags(["photos", "logs-*", "photos"], "delete, write,read,write")).toEqual([
      { bucket: "photos", allow: ["read", "write", "delete"] },
      { bucket: "logs-*", allow: ["read", "write", "delete"] },
    ]);
  });

  test("an unknown action is a usage error naming it and the actions there are", () => {
    const error = thrown(() => parseGrantFlags(["photos"], "read,admin"));
    expect(error.code).toBe("usage");
    expect(error.message).toContain('"admin" is not an action');
    expect(error.message).toContain("read, list, write, delete");
    expect(thrown(() => parseGrantFlags([], "READ")).message).toContain('"READ"');
  });

  test("an empty --allow is refused (a key must be allowed something)", () => {
    expect(thrown(() => parseGrantFlags([], "")).message).toContain("--allow is empty");
    expect(thrown(() => parseGrantFlags([], " , ")).message).toContain("--allow is empty");
  });

  test("a bad pattern is a usage error naming it and the forms a pattern takes", () => {
    const error = thrown(() => parseGrantFlags(["ok", "lo*gs"]));
    expect(error.code).toBe("usage");
    expect(error.message).toContain('--bucket "lo*gs"');
    expect(error.message).toContain("logs-*");
  });

  test(`at most grantsPerKeyMax (${limits.grantsPerKeyMax}) buckets`, () => {
    const buckets = (n: number) => Array.from({ length: n }, (_, i) => `b${i}`);
    expect(parseGrantFlags(buckets(limits.grantsPerKeyMax))).toHaveLength(limits.grantsPerKeyMax);
    expect(thrown(() => parseGrantFlags(buckets(limits.grantsPerKeyMax + 1))).message).toContain(`at most ${limits.grantsPerKeyMax} grants`);
  });
});

describe("the grant schemas", () => {
  test("the JSON shape of a grant, exactly", () => {
    expect(grantsSchema.parse([{ bucket: "photos", allow: ["read", "list"] }])).toEqual([{ bucket: "photos", allow: ["read", "list"] }]);
  });

  test("an empty allow, an unknown action, a bad pattern and a missing field are refused", () => {
    expect(grantSchema.safeParse({ bucket: "photos", allow: [] }).success).toBe(false);
    expect(grantSchema.safeParse({ bucket: "photos", allow: ["admin"] }).success).toBe(false);
    expect(grantSchema.safeParse({ bucket: "a*b", allow: ["read"] }).success).toBe(false);
    expect(grantSchema.safeParse({ allow: ["read"] }).success).toBe(false);
  });

  test(`a key holds at most grantsPerKeyMax (${limits.grantsPerKeyMax}) grants`, () => {
    const of = (n: number) => Array.from({ length: n }, (_, i) => ({ bucket: `b${i}`, allow: ["read"] }));
    expect(grantsSchema.safeParse(of(limits.grantsPerKeyMax)).success).toBe(true);
    expect(grantsSchema.safeParse(of(limits.grantsPerKeyMax + 1)).success).toBe(false);
  });

  test("normalizeGrants folds repeated actions and repeated patterns, keeping first-seen order", () => {
    const folded = normalizeGrants([
      { bucket: "b", allow: ["list", "list"] },
      { bucket: "a", allow: ["delete"] },
      { bucket: "b", allow: ["read"] },
    ]);
    expect(folded).toEqual([
      { bucket: "b", allow: ["read", "list"] },
      { bucket: "a", allow: ["delete"] },
    ]);
    expect(normalizeGrants(folded)).toEqual(folded); // idempotent
  });

  test("describeGrants says them for a person", () => {
    expect(describeGrants([{ bucket: "photos", allow: ["read", "list"] }, { bucket: "logs-*", allow: ["write"] }])).toBe("photos: read,list; logs-*: write");
    expect(describeGrants([])).toBe("(none)");
  });
});
