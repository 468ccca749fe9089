// Names: the rule for new names (no control characters, no bidi controls) at each edge of each
// range, where it is enforced (the zod schemas every role parses with, the catalog's checks),
// that names stored before the rule stay readable, and how names are shown on a terminal.
import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { forbiddenCharacterIn, newNameProblem, printable, terminalJson } from "../../src/lib/names.ts";
import { ballKey, bucketName, newBallIdName, newBallKey, newBucketName, newTags, tags } from "../../src/protocol/schemas.ts";
import { ballDeclaration, listBallsArgs } from "../../src/protocol/ball.ts";
import { routerOps } from "../../src/protocol/router.ts";
import { spmOps } from "../../src/protocol/spm.ts";
import { describeZodError } from "../../src/protocol/envelope.ts";
import { checkName } from "../../src/catalog/validate.ts";
import { BadRequestError } from "../../src/lib/errors.ts";
import { Catalog } from "../../src/catalog/index.ts";
import { ballOf, peerRecord, type BallSpec } from "./fixtures/catalog-records.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const at = (codePoint: number) => String.fromCodePoint(codePoint);

/** Each range's first and last member, and the neighbours just outside it. */
const forbiddenEdges = [0x0000, 0x0009, 0x000a, 0x001b, 0x001f, 0x007f, 0x0080, 0x009b, 0x009f, 0x061c, 0x200e, 0x200f, 0x202a, 0x202e, 0x2066, 0x2069];
const allowedNeighbours = [0x0020, 0x007e, 0x00a0, 0x061b, 0x061d, 0x200d, 0x2010, 0x2029, 0x202f, 0x2065, 0x206a, 0x05d0, 0x0627, 0x1f600];

describe("the rule for new names", () => {
  test("refuses every C0, DEL, C1 and bidi control, at the edges of each range", () => {
    for (const codePoint of forbiddenEdges) {
      const found = forbiddenCharacterIn(`ab${at(codePoint)}c`);
      expect(found?.codePoint).toBe(codePoint);
      expect(found?.position).toBe(3);
    }
    for (const codePoint of allowedNeighbours) expect(forbiddenCharacterIn(`ab${at(codePoint)}c`)).toBeUndefined();
    expect(forbiddenCharacterIn("photos/2024/cat.jpg")).toBeUndefined();
    expect(forbiddenCharacterIn("نص/עברית/日本語/😀")).toBeUndefined(); // right-to-left scripts are letters, not controls
  });

  test("the message names the field, the code point and its place, never the raw text", () => {
    const message = newNameProblem("key", "😀a\u001b[31m") as string;
    expect(message).toStartWith("key holds U+001B (a control character) at character 3;");
    expect(message).not.toContain("\u001b");
    expect(newNameProblem("ball id", "invoice\u202efdp.exe")).toStartWith("ball id holds U+202E (a bidirectional text control) at character 8;");
    expect(newNameProblem("key", "a\ud800b")).toContain("lone surrogate");
    expect(newNameProblem("key", "fine/name.txt")).toBeUndefined();
  });
});

describe("where names enter: the zod schemas", () => {
  test("new names (a put's bucket, key, ball id, tags, content type) are refused with the field and the code point", () => {
    const problem = newBallKey.safeParse("a\u0085b");
    expect(problem.success).toBe(false);
    expect(describeZodError(problem.error!)).toBe(`(message): ${newNameProblem("key", "a\u0085b")}`);
    expect(newBucketName.safeParse("b\u202e").success).toBe(false);
    expect(newBallIdName.safeParse("g\u2066").success).toBe(false);
    expect(newTags.safeParse({ "own\u0007er": "ana" }).success).toBe(false);
    expect(newTags.safeParse({ owner: "an\u009ba" }).success).toBe(false);
    expect(newTags.safeParse({ owner: "ana", "日本": "😀" }).success).toBe(true);
    const declaration = { bucket: "b", key: "k", size: 0, checksum: "0".repeat(64), contentType: "text/plain", tags: {}, rf: 1, chunkSize: 1024 };
    expect(ballDeclaration.safeParse(declaration).success).toBe(true);
    for (const bad of [{ key: "k\u007f" }, { bucket: "b\u200f" }, { ballId: "\u061c" }, { contentType: "text/plain\u001b" }, { tags: { t: "\u202a" } }]) {
      const parsed = ballDeclaration.safeParse({ ...declaration, ...bad });
      expect(parsed.success).toBe(false);
      expect(describeZodError(parsed.error!)).toMatch(/holds U\+[0-9A-F]{4} \(a (control character|bidirectional text control)\)/);
    }
    // Every op that starts or commits a write, on the router and on the SPM.
    expect(routerOps["ball.begin"].args.safeParse({ bucket: "b", key: "k\u001b", rf: 1 }).success).toBe(false);
    expect(routerOps["ball.put"].args.safeParse({ ...declaration, key: "k\u202e", data: new Uint8Array(0) }).success).toBe(false);
    expect(routerOps["ball.commit"].args.safeParse({ ...declaration, key: "k\u202e", objectId: "0123456789", chunks: [] }).success).toBe(false);
    expect(spmOps["ball.begin"].args.safeParse({ bucket: "b\u0080", key: "k", rf: 1 }).success).toBe(false);
    expect(spmOps["ball.reserve"].args.safeParse({ bucket: "b", key: "k\u2069", rf: 1, count: 1 }).success).toBe(false);
    expect(spmOps["ball.commit"].args.safeParse({ ...declaration, tags: { "x\u200e": "y" }, objectId: "0123456789", chunks: [] }).success).toBe(false);
  });

  test("reads, listings and deletes take names stored before the rule", () => {
    const legacy = "old\u202ename\u0085";
    expect(ballKey.safeParse(legacy).success).toBe(true);
    expect(bucketName.safeParse(legacy).success).toBe(true);
    expect(tags.safeParse({ [legacy]: legacy }).success).toBe(true);
    for (const op of ["ball.get", "ball.stat", "ball.delete"] as const) expect(routerOps[op].args.safeParse({ bucket: legacy, key: legacy }).success).toBe(true);
    expect(spmOps["ball.delete"].args.safeParse({ bucket: legacy, key: legacy }).success).toBe(true);
    expect(listBallsArgs.safeParse({ bucket: legacy, prefix: legacy, ballId: legacy, limit: 10 }).success).toBe(true);
  });
});

describe("where names enter: the catalog", () => {
  let cleanup: (() => void) | undefined;
  afterEach(() => {
    cleanup?.();
    cleanup = undefined;
  });

  test("checkName: the new-name rule only for what a write creates", () => {
    expect(() => checkName("key", "k\u009b", 1024, "new")).toThrow(BadRequestError);
    expect(() => checkName("key", "k\u009b", 1024, "new")).toThrow("key holds U+009B (a control character) at character 2");
    expect(checkName("key", "k\u009b", 1024)).toBe("k\u009b");
  });

  test("a commit with such a name is refused; a ball stored under one before can still be read, listed and deleted", () => {
    const dir = mkdtempSync(join(tmpdir(), "mictlanx-names-"));
    cleanup = () => rmSync(dir, { recursive: true, force: true });
    const path = join(dir, "catalog.sqlite");
    let catalog = Catalog.open(path);
    catalog.upsertPeer(peerRecord("p1"));
    const refused: Array<Omit<BallSpec, "objectId" | "peers">> = [{ key: "k\u001b" }, { key: "k", bucket: "b\u202e" }, { key: "k", ballId: "g\u2067" }, { key: "k", tags: { t: "v\u0085" } }, { key: "k", tags: { "t\u200e": "v" } }];
    for (const spec of refused) {
      const { ball, chunks } = ballOf({ ...spec, objectId: "refused-1", peers: [["p1"]] });
      expect(() => catalog.commitBall(ball, chunks, {})).toThrow(/holds U\+[0-9A-F]{4}/);
    }
    const { ball, chunks } = ballOf({ key: "placeholder", objectId: "legacy-1", peers: [["p1"]], tags: { note: "placeholder" } });
    catalog.commitBall(ball, chunks, {});
    catalog.close();
    // What an older build could store: bidi and C1 characters in the key, the ball id and a tag.
    const legacy = "old\u202e\u0085name";
    const db = new Database(path);
    db.run("UPDATE balls SET key = ?, ball_id = ?, tags = ? WHERE key = 'placeholder'", [legacy, legacy, JSON.stringify({ note: legacy })]);
    db.close();
    catalog = Catalog.open(path);
    expect(catalog.getBall("bucket", legacy)?.tags).toEqual({ note: legacy });
    expect(catalog.listBalls({ bucket: "bucket", prefix: "old", ballId: legacy, limit: 10 }).balls.map((each) => each.key)).toEqual([legacy]);
    expect(catalog.deleteBall("bucket", legacy)?.key).toBe(legacy);
    expect(catalog.getBall("bucket", legacy)).toBeUndefined();
    catalog.close();
  });
});

describe("names on a terminal", () => {
  test("printable escapes what is not printable as \\u{HEX} and doubles backslashes; letters and emoji stay", () => {
    expect(printable("photos/2024/cat.jpg")).toBe("photos/2024/cat.jpg");
    expect(printable("a\u001b[2Jb")).toBe("a\\u{1b}[2Jb");
    expect(printable("tab\there\nnew")).toBe("tab\\u{9}here\\u{a}new");
    expect(printable("invoice\u202efdp.exe")).toBe("invoice\\u{202e}fdp.exe");
    expect(printable("\u0085\u009b\u007f")).toBe("\\u{85}\\u{9b}\\u{7f}");
    expect(printable("zero\u200bwidth\ufeff")).toBe("zero\\u{200b}width\\u{feff}");
    expect(printable("line\u2028para\u2029")).toBe("line\\u{2028}para\\u{2029}");
    expect(printable("lone\ud800")).toBe("lone\\u{d800}");
    expect(printable("tag\u{e0041}")).toBe("tag\\u{e0041}");
    expect(printable("C:\\dir\\u{7}")).toBe("C:\\\\dir\\\\u{7}"); // a literal "\u{7}" cannot pass for an escape
    expect(printable("نص عربي / עברית / 日本語 😀 café")).toBe("نص عربي / עברית / 日本語 😀 café");
  });

  test("terminalJson is exact JSON with nothing raw a terminal could act on", () => {
    const value = { key: "a\u001b\u007f\u0085\u009b\u202e\u2066\u2028\u2029\u200b\u{e0001}\ud800z", plain: "日本 😀", n: 1 };
    const text = terminalJson(value);
    expect(JSON.parse(text)).toEqual(value);
    expect(text).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\p{Cf}\p{Cs}]/u);
    expect(text).toContain("日本 😀");
    expect(terminalJson({ a: "plain" })).toBe(JSON.stringify({ a: "plain" }));
  });
});
