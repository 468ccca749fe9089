// Names and where balls land, through the real CLI:
// - a put whose key, bucket, ball id or tag holds a control or bidi character exits 2, says
//   which character, and prints no raw control character; nothing is stored;
// - balls stored under such names before the rule (written into the catalog by hand, as an
//   older build could) still list, stat, get and delete, shown escaped; --json stays exact;
// - `get --ball-id G -o DIR` writes nothing outside DIR, whatever the keys (`../x`, `/x`,
//   `a//b`, `.`, symbolic links inside DIR pointing out), says which it skipped, exits 1;
// - `get -o` onto a FIFO or a device writes into it (no partial file, no rename), still verified.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes, seededRandom } from "../support/random.ts";
import { clientFor, kill9, programCommand, startTestVss, tempDir } from "../support/vss.ts";
import { flipByteOnDisk } from "../support/corrupt.ts";

const { random, seed } = seededRandom("client-cli-names");
// Real processes on a shared 2-core machine: far more than the runner\'s 5 s default.
setDefaultTimeout(120_000);
const KiB = 1024;
const dir = tempDir("client-cli-names");
let vss: Awaited<ReturnType<typeof startTestVss>>;
let env: Record<string, string>;

/** A new directory under the test's with one FIFO in it, "pipe". */
function fifoIn(name: string): { base: string; fifo: string } {
  const base = join(dir, name);
  mkdirSync(base);
  const fifo = join(base, "pipe");
  expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
  return { base, fifo };
}

/** How long the FIFO's reader waits for the end of the data (forever, when nobody opens the FIFO for writing). */
const fifoReadMs = 30_000;

/** `cat FIFO` as the FIFO's reader, its bytes within `fifoReadMs`; killed by its pid after the work. */
async function readFifo<T>(fifo: string, work: (received: Promise<ArrayBuffer>) => Promise<T>): Promise<T> {
  const reader = Bun.spawn(["cat", fifo], { stdout: "pipe", stderr: "inherit" });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the reader of ${fifo} saw no end of the data within ${fifoReadMs} ms`)), fifoReadMs);
  });
  try {
    return await work(Promise.race([new Response(reader.stdout).arrayBuffer(), late]));
  } finally {
    clearTimeout(timer);
    if (reader.exitCode === null && reader.signalCode === null) process.kill(reader.pid, "SIGKILL");
  }
}

/** Bytes a terminal could act on or that hide text; none of it may reach stdout or stderr raw. */
const rawControl = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

async function run(args: string[], options: { stdin?: Uint8Array } = {}) {
  const proc = Bun.spawn([...programCommand(), ...args], {
    stdin: options.stdin ? new Blob([options.stdin]) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...env },
  });
  const [bytes, stderr, code] = await Promise.all([new Response(proc.stdout).arrayBuffer(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout: new TextDecoder().decode(bytes), stderr, bytes: new Uint8Array(bytes) };
}

function useVss(started: Awaited<ReturnType<typeof startTestVss>>): void {
  vss = started;
  env = { MICTLANX_ROUTERS: vss.routers.map((router) => router.address).join(","), MICTLANX_SPM: vss.spm.address };
}

beforeAll(async () => useVss(await startTestVss({ label: "client-cli-names", dir: join(dir, "vss"), peers: 2, routers: 1 })));
afterAll(async () => {
  await vss?.cleanup();
  if (!process.env.MICTLANX_KEEP) rmSync(dir, { recursive: true, force: true });
});

describe(`new names (seed ${seed})`, () => {
  test("a put with a control or bidi character in a name exits 2, names the code point, prints nothing raw, stores nothing", async () => {
    const file = join(dir, "small.txt");
    writeFileSync(file, "hello\n");
    const cases: Array<{ args: string[]; says: string }> = [
      { args: ["put", "n/evil\u001b[2Jkey", file], says: "key holds U+001B (a control character) at character 5" },
      { args: ["put", "n/invoice\u202efdp.exe", file], says: "key holds U+202E (a bidirectional text control) at character 8" },
      { args: ["put", "n/c1\u009bkey", file], says: "key holds U+009B (a control character) at character 3" },
      { args: ["put", "b\u2066/key", file], says: "bucket holds U+2066 (a bidirectional text control) at character 2" },
      { args: ["put", "n/key", file, "--ball-id", "g\u200f"], says: "--ball-id holds U+200F" },
      { args: ["put", "n/key", file, "--tag", "owner=an\u0007a"], says: "--tag owner value holds U+0007" },
      { args: ["put", "n/key", file, "--tag", "ow\u0085ner=ana"], says: "--tag name holds U+0085" },
      { args: ["put", "n/key", "-", "--content-type", "text/plain\u001b"], says: "--content-type holds U+001B" },
    ];
    for (const { args, says } of cases) {
      const put = await run(args, { stdin: new TextEncoder().encode("x") });
      expect({ args, code: put.code }).toEqual({ args, code: 2 });
      expect(put.stderr).toContain(says);
      expect(put.stderr).not.toMatch(rawControl);
      expect(put.stdout).toBe("");
    }
    // Nothing was stored, so not even the bucket was made.
    expect((await run(["ls", "n", "--json"])).code).toBe(4);
  });

  test("put --recursive: a file whose name holds a newline fails alone (exit 1, shown escaped); the others are stored", async () => {
    const tree = join(dir, "tree");
    mkdirSync(tree, { recursive: true });
    writeFileSync(join(tree, "good.txt"), "good");
    writeFileSync(join(tree, "bad\nname.txt"), "bad");
    const put = await run(["put", "tree/t", tree, "--recursive"]);
    expect(put.code).toBe(1);
    expect(put.stdout).toBe("put tree/t/good.txt: 4 B\n");
    expect(put.stderr).toContain("put tree/t/bad\\u{a}name.txt failed: not stored: its key holds U+000A (a control character) at character 6");
    expect(put.stderr.split("\n").filter((line) => line !== "").length).toBe(2); // the file's line and the summary: the newline did not split it
  });
});

describe("names stored before the rule", () => {
  const legacyKey = "old\u202eexe.txt\u0085";
  const legacyGroup = "grp\u2067";
  const data = randomBytes(random, 300 * KiB);

  test("list, stat, get and delete still work; people see them escaped, --json is exact; a new put there is refused", async () => {
    const client = clientFor(vss, { chunkSize: 128 * KiB });
    await client.put("legacy", "placeholder.txt", data, { rf: 1, ballId: "placeholder-group", tags: { note: "placeholder" } });
    client.close();
    // Stop the VSS (not its data), rename the ball in the catalog as an older build could have
    // stored it, and start the VSS again on the same data.
    for (const role of [vss.spm, ...vss.routers, ...vss.peers]) kill9(role);
    await Promise.all([vss.spm, ...vss.routers, ...vss.peers].map((role) => role.exited));
    const db = new Database(join(dir, "vss", "spm", "catalog.sqlite"));
    db.run("UPDATE balls SET key = ?, ball_id = ?, tags = ? WHERE bucket = 'legacy' AND key = 'placeholder.txt'", [
      legacyKey,
      legacyGroup,
      JSON.stringify({ note: `a\u009bb`, fullname: legacyKey, extension: "txt", num_chunks: "3" }),
    ]);
    db.close();
    useVss(await startTestVss({ label: "client-cli-names", dir: join(dir, "vss"), peers: 2, routers: 1 }));

    const ls = await run(["ls", "legacy"]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toStartWith("old\\u{202e}exe.txt\\u{85}\t300 KiB\tv1\tgrp\\u{2067}\n");
    expect(ls.stdout).not.toMatch(rawControl);
    const json = await run(["ls", "legacy", "--json"]);
    expect(json.stdout).not.toMatch(rawControl);
    expect(JSON.parse(json.stdout)[0]).toMatchObject({ key: legacyKey, ballId: legacyGroup, tags: { note: "a\u009bb" } });
    const stat = await run(["stat", `legacy/${legacyKey}`]);
    expect(stat.code).toBe(0);
    expect(stat.stdout).toContain("legacy/old\\u{202e}exe.txt\\u{85}\n");
    expect(stat.stdout).toContain("tag           note=a\\u{9b}b");
    expect(stat.stdout).not.toMatch(rawControl);
    expect(JSON.parse((await run(["stat", `legacy/${legacyKey}`, "--json"])).stdout).key).toBe(legacyKey);
    const get = await run(["get", `legacy/${legacyKey}`, "-o", "-"]);
    expect(get.code).toBe(0);
    expect(same(get.bytes, data)).toBe(true);
    const group = await run(["get", "legacy", "--ball-id", legacyGroup, "-o", join(dir, "legacy-out")]);
    expect(group.code).toBe(0);
    expect(group.stdout).not.toMatch(rawControl);
    expect(same(readFileSync(join(dir, "legacy-out", legacyKey)), data)).toBe(true);
    const overwrite = await run(["put", `legacy/${legacyKey}`, "-"], { stdin: new Uint8Array([1]) });
    expect(overwrite.code).toBe(2);
    const del = await run(["del", `legacy/${legacyKey}`]);
    expect(del.code).toBe(0);
    expect(del.stdout).toStartWith("deleted legacy/old\\u{202e}exe.txt\\u{85} (version 1");
    expect((await run(["stat", `legacy/${legacyKey}`])).code).toBe(4);
  });
});

describe("get --ball-id G -o DIR writes nothing outside DIR", () => {
  test("keys with .., /, //, . and links out are skipped and said; the rest are written; exit 1", async () => {
    const base = join(dir, "escape");
    const out = join(base, "out");
    const outside = join(base, "outside");
    mkdirSync(join(out, "real"), { recursive: true });
    mkdirSync(outside, { recursive: true });
    writeFileSync(join(base, "x"), "keep me");
    writeFileSync(join(outside, "victim"), "keep me too");
    symlinkSync(outside, join(out, "link-out")); // a directory link leading out of DIR
    symlinkSync(join(out, "real"), join(out, "link-in")); // one leading back inside: fine
    symlinkSync(join(outside, "victim"), join(out, "last-link")); // the last part: replaced, not followed
    mkdirSync(join(out, "a-dir"));
    const good = ["plain.txt", "sub/deep/file.bin", "link-in/through.txt", "last-link"];
    const skipped: Record<string, string> = {
      "../x": 'its key has a ".." part',
      "sub/../../x": 'its key has a ".." part',
      "/abs.txt": 'its key starts with "/"',
      "a//b.txt": "its key has an empty part",
      "trailing/": 'its key ends in "/" but it holds', // a folder marker must be empty to become a directory
      "./dot.txt": 'its key has a "." part',
      "link-out/victim": "is a symbolic link to",
      "a-dir": "is a directory; not replacing it",
    };
    const contents = new Map<string, Uint8Array>();
    const client = clientFor(vss);
    for (const key of [...good, ...Object.keys(skipped)]) {
      const bytes = randomBytes(random, 1000 + contents.size);
      contents.set(key, bytes);
      await client.put("escape", key, bytes, { rf: 1, ballId: "G" });
    }
    client.close();

    const get = await run(["get", "escape", "--ball-id", "G", "-o", out]);
    expect(get.code).toBe(1);
    expect(readFileSync(join(base, "x"), "utf8")).toBe("keep me");
    expect(readFileSync(join(outside, "victim"), "utf8")).toBe("keep me too");
    expect(readdirSync(outside)).toEqual(["victim"]);
    expect(readdirSync(base).sort()).toEqual(["out", "outside", "x"]);
    for (const [key, reason] of Object.entries(skipped)) {
      const line = get.stderr.split("\n").find((each) => each.startsWith(`mictlanx: get escape/${key} skipped: `));
      expect({ key, line }).toEqual({ key, line: expect.stringContaining(reason) });
    }
    expect(get.stderr).toContain(`mictlanx: ${Object.keys(skipped).length} of ${contents.size} ball(s) of group G were not written`);
    expect(same(readFileSync(join(out, "plain.txt")), contents.get("plain.txt")!)).toBe(true);
    expect(same(readFileSync(join(out, "sub/deep/file.bin")), contents.get("sub/deep/file.bin")!)).toBe(true);
    expect(same(readFileSync(join(out, "real", "through.txt")), contents.get("link-in/through.txt")!)).toBe(true);
    expect(lstatSync(join(out, "last-link")).isFile()).toBe(true); // the link itself was replaced
    expect(same(readFileSync(join(out, "last-link")), contents.get("last-link")!)).toBe(true);
    expect(statSync(join(out, "a-dir")).isDirectory()).toBe(true);
    const all = (path: string): string[] => readdirSync(path, { recursive: true }).map(String);
    expect(all(out).filter((name) => name.includes(".mictlanx-partial-"))).toEqual([]);
  });
});

describe("get -o onto a FIFO or a device writes into it", () => {
  test("a FIFO: the reader gets every byte, the FIFO stays a FIFO, no partial file", async () => {
    const { base, fifo } = fifoIn("fifo");
    const data = randomBytes(random, 2 * 1024 * KiB + 7);
    const client = clientFor(vss, { chunkSize: 256 * KiB });
    await client.put("special", "data.bin", data, { rf: 1 });
    client.close();
    await readFifo(fifo, async (received) => {
      const get = await run(["get", "special/data.bin", "-o", fifo]);
      expect(get.stderr).toBe("");
      expect(get.code).toBe(0);
      expect(same(new Uint8Array(await received), data)).toBe(true);
    });
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    expect(readdirSync(base)).toEqual(["pipe"]);
  });

  test("a character device made here (mknod c 1 3, the null device): written into, stays a device", async () => {
    const base = join(dir, "device");
    mkdirSync(base);
    const node = join(base, "null");
    const made = Bun.spawnSync(["mknod", node, "c", "1", "3"], { stderr: "pipe" });
    if (made.exitCode !== 0) {
      console.log(`[names] mknod is not allowed here (${made.stderr.toString().trim()}); the device case is not run`);
      return;
    }
    const get = await run(["get", "special/data.bin", "-o", node]);
    expect(get.stderr).toBe("");
    expect(get.code).toBe(0);
    expect(lstatSync(node).isCharacterDevice()).toBe(true);
    expect(readdirSync(base)).toEqual(["null"]);
  });

  test("a checksum failure after bytes went into the FIFO says so and exits 1", async () => {
    const { base, fifo } = fifoIn("fifo-corrupt");
    const chunk = 128 * KiB;
    const data = randomBytes(random, 4 * chunk);
    const client = clientFor(vss, { chunkSize: chunk });
    await client.put("special", "bad.bin", data, { rf: 1 });
    const stat = await client.stat("special", "bad.bin");
    client.close();
    const holder = vss.peers.find((peer) => peer.id === stat.chunks[2]!.peers[0])!;
    expect(flipByteOnDisk(holder.data, data.subarray(2 * chunk + 500, 2 * chunk + 564))).toBe(true); // in chunk 2, its only replica
    await readFifo(fifo, async (received) => {
      const get = await run(["get", "special/bad.bin", "-o", fifo]);
      expect(get.code).toBe(1);
      expect(get.stderr).toMatch(/^mictlanx: .*; \d+ bytes had already gone into .*pipe, which is not a regular file and cannot be taken back: discard them\n$/);
      const got = new Uint8Array(await received);
      expect(got.byteLength).toBeLessThan(data.byteLength);
      expect(same(got, data.subarray(0, got.byteLength))).toBe(true); // only verified chunks went in
    });
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    expect(existsSync(join(base, "pipe"))).toBe(true);
    expect(readdirSync(base)).toEqual(["pipe"]);
  });
});
