// The shell's put/get/del/ls/stat beyond what cli.test.ts covers: --json shapes, --recursive,
// ball groups, get into a directory, usage errors and their exit codes, encryption with
// MICTLANX_KEY and --key-file, --compress, nothing extra on a piped stderr, and the progress bar
// on a terminal.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { randomBytes, seededRandom } from "../support/random.ts";
import { cli, programCommand, startTestVss, tempDir } from "../support/vss.ts";
import { buildProgram } from "../../src/program.ts";

const { random, seed } = seededRandom("client-cli");
const KiB = 1024;
const MiB = 1024 * KiB;
const dir = tempDir("client-cli");
let vss: Awaited<ReturnType<typeof startTestVss>>;
let env: Record<string, string>;

beforeAll(async () => {
  vss = await startTestVss({ label: "client-cli", peers: 3, routers: 2 });
  env = { MICTLANX_ROUTERS: vss.routers.map((router) => router.address).join(",") };
});
afterAll(async () => {
  await vss?.cleanup();
  if (!process.env.MICTLANX_KEEP) rmSync(dir, { recursive: true, force: true });
});

const sha256 = (data: Uint8Array) => new Bun.CryptoHasher("sha256").update(data).digest("hex");
const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

/** Run the CLI; the env of the VSS unless told otherwise. stdout as bytes too. */
async function run(args: string[], options: { env?: Record<string, string>; stdin?: Uint8Array } = {}) {
  const proc = Bun.spawn([...programCommand(), ...args], {
    stdin: options.stdin ? new Blob([options.stdin]) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...env, ...options.env },
  });
  const [bytes, stderr, code] = await Promise.all([new Response(proc.stdout).arrayBuffer(), new Response(proc.stderr).text(), proc.exited]);
  const stdout = new TextDecoder().decode(bytes);
  return { code, stdout, stderr, bytes: new Uint8Array(bytes) };
}

/** Whether main.ts declares a flag on a command yet. */
function declared(command: string, flag: string): boolean {
  return buildProgram().commands.find((each) => each.name() === command)?.options.some((option) => option.long === flag) ?? false;
}

/**
 * `mictlanx put|get …` with flags main.ts may not declare yet (--compress, --key-file): through
 * the real CLI once it declares them all; until then, the same command action in its own
 * process, given the flags as commander would parse them.
 */
async function runWithFlags(command: "put" | "get", positional: string[], cliArgs: string[], parsed: Record<string, unknown>, options: { env?: Record<string, string> } = {}) {
  const newFlags = cliArgs.filter((arg) => arg === "--compress" || arg === "--key-file");
  if (newFlags.every((flag) => declared(command, flag))) return run([command, ...positional, ...cliArgs], options);
  const source = resolve(import.meta.dir, "../../src/commands");
  const script = `
    const { action } = await import(${JSON.stringify(join(source, "run.ts"))});
    const commands = await import(${JSON.stringify(join(source, "client.ts"))});
    await action(commands.${command === "put" ? "putCommand" : "getCommand"})(...JSON.parse(process.env.MICTLANX_TEST_ARGS), JSON.parse(process.env.MICTLANX_TEST_FLAGS));
  `;
  const proc = Bun.spawn([process.execPath, "-e", script], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...env, ...options.env, MICTLANX_TEST_FLAGS: JSON.stringify(parsed), MICTLANX_TEST_ARGS: JSON.stringify(positional) },
  });
  const [bytes, stderr, code] = await Promise.all([new Response(proc.stdout).arrayBuffer(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout: new TextDecoder().decode(bytes), stderr, bytes: new Uint8Array(bytes) };
}

const putDefaults = { rf: "2", chunkSize: "1MiB" };
const getDefaults = { output: "-" };

describe(`put, get, ls, stat, del: shapes and exit codes (seed ${seed})`, () => {
  test("put --json has the whole result; get into a directory; ls and stat --json; del --json", async () => {
    const data = randomBytes(random, 2 * MiB + 99);
    const file = join(dir, "table.csv");
    writeFileSync(file, data);
    const put = await run(["put", "shapes/2024/table.csv", file, "--chunk-size", "512KiB", "--tag", "owner=ana", "--json"]);
    expect(put.stderr).toBe(""); // piped: no progress bar, nothing extra
    expect(put.code).toBe(0);
    const result = JSON.parse(put.stdout);
    expect(Object.keys(result).sort()).toEqual(["ballId", "bucket", "checksum", "compressed", "contentType", "encrypted", "key", "numChunks", "objectId", "size", "storedBytes", "tags", "version"]);
    expect(result).toMatchObject({ bucket: "shapes", key: "2024/table.csv", size: data.byteLength, numChunks: 5, checksum: sha256(data), contentType: "text/csv", compressed: false, encrypted: false, storedBytes: data.byteLength, version: 1 });
    // The ball id (its own group, named by its key) and every tag, the user's and the client's.
    expect(result.ballId).toBe("2024/table.csv");
    expect(result.tags).toEqual({ owner: "ana", fullname: "table.csv", extension: "csv", num_chunks: "5", full_checksum: sha256(data) });
    const grouped = JSON.parse((await run(["put", "shapes-grouped/2024/grouped.csv", file, "--ball-id", "g-1", "--json"])).stdout);
    expect(grouped).toMatchObject({ ballId: "g-1", tags: { fullname: "grouped.csv", num_chunks: "3" } });

    const human = await run(["put", "shapes/2024/table.csv", file, "--tag", "owner=ana"]);
    expect(human.stdout).toMatch(/^put shapes\/2024\/table\.csv: 2\.0 MiB in 3 chunk\(s\), rf 2, version 2, sha256 [0-9a-f]{64}\n$/);

    const outDir = join(dir, "into");
    mkdirSync(outDir);
    const get = await run(["get", "shapes/2024/table.csv", "-o", outDir]);
    expect(get.code).toBe(0);
    expect(get.stderr).toBe("");
    expect(same(readFileSync(join(outDir, "table.csv")), data)).toBe(true);
    expect(readdirSync(outDir)).toEqual(["table.csv"]); // no partial file left

    const ls = await run(["ls", "shapes/2024/", "--json"]);
    const balls = JSON.parse(ls.stdout);
    expect(balls.length).toBe(1);
    expect(Object.keys(balls[0]).sort()).toEqual(["ballId", "bucket", "checksum", "chunkSize", "contentType", "createdMs", "key", "numChunks", "objectId", "rf", "size", "tags", "version"]);
    expect(JSON.parse((await run(["ls", "shapes/nothing-here/", "--json"])).stdout)).toEqual([]);
    const buckets = JSON.parse((await run(["ls", "--json"])).stdout);
    expect(buckets.find((bucket: { name: string }) => bucket.name === "shapes")).toMatchObject({ name: "shapes", balls: 1 });
    for (const bucket of buckets) expect(Object.keys(bucket).sort()).toEqual(["balls", "bytes", "createdMs", "name"]);

    const stat = JSON.parse((await run(["stat", "shapes/2024/table.csv", "--json"])).stdout);
    expect(stat.tags).toEqual({ owner: "ana", fullname: "table.csv", extension: "csv", num_chunks: "3", full_checksum: sha256(data) });

    const del = await run(["del", "shapes/2024/table.csv", "--json"]);
    expect(del.code).toBe(0);
    expect(JSON.parse(del.stdout)).toMatchObject({ bucket: "shapes", key: "2024/table.csv", version: 2, size: data.byteLength });
    expect((await run(["del", "shapes/2024/table.csv", "--json"])).code).toBe(4);
  });

  test("stdin to stdout, byte for byte", async () => {
    const data = randomBytes(random, 1_500_000);
    const put = await run(["put", "pipes/in.bin", "-", "--json"], { stdin: data });
    expect(put.code).toBe(0);
    expect(JSON.parse(put.stdout).size).toBe(data.byteLength);
    const get = await run(["get", "pipes/in.bin", "-o", "-"]);
    expect(get.code).toBe(0);
    expect(get.stderr).toBe("");
    expect(same(get.bytes, data)).toBe(true);
    // A reader that stops early (`| head -c 1000`): the get stops quietly, exit 0.
    const head = Bun.spawn(["sh", "-c", `${programCommand().map((word) => `'${word}'`).join(" ")} get pipes/in.bin -o - | head -c 1000 | wc -c`], {
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, ...env },
    });
    const [counted, headErr] = await Promise.all([new Response(head.stdout).text(), new Response(head.stderr).text(), head.exited]);
    expect(counted.trim()).toBe("1000");
    expect(headErr).toBe("");
  });

  test("--recursive puts a tree keyed by relative path; --json lists each result", async () => {
    const tree = join(dir, "tree");
    const contents = new Map<string, Uint8Array>();
    for (const path of ["a.txt", "sub/b.bin", "sub/deeper/c.json"]) {
      const data = randomBytes(random, Math.floor(random() * 300 * KiB));
      mkdirSync(join(tree, path, ".."), { recursive: true });
      writeFileSync(join(tree, path), data);
      contents.set(path, data);
    }
    const put = await run(["put", "trees/run-7", tree, "--recursive", "--json"]);
    expect(put.code).toBe(0);
    const results = JSON.parse(put.stdout);
    expect(results.map((result: { key: string }) => result.key)).toEqual(["run-7/a.txt", "run-7/sub/b.bin", "run-7/sub/deeper/c.json"]);
    for (const [path, data] of contents) {
      const get = await run(["get", `trees/run-7/${path}`, "-o", "-"]);
      expect(same(get.bytes, data)).toBe(true);
    }
    expect((await run(["ls", "trees/run-7/sub/", "--json"])).stdout).toContain("run-7/sub/deeper/c.json");
    const human = await run(["put", "trees/again", tree, "--recursive"]);
    expect(human.stdout.trim().split("\n")).toEqual([expect.stringMatching(/^put trees\/again\/a\.txt: /), expect.stringMatching(/^put trees\/again\/sub\/b\.bin: /), expect.stringMatching(/^put trees\/again\/sub\/deeper\/c\.json: /)]);
    // A directory without --recursive, or --recursive on a file: usage.
    const noFlag = await run(["put", "trees/x", tree]);
    expect(noFlag.code).toBe(2);
    expect(noFlag.stderr).toContain("is a directory; add --recursive");
    expect((await run(["put", "trees/x", join(tree, "a.txt"), "--recursive"])).code).toBe(2);
  });

  test("ball groups: ls, get into a directory, del by --ball-id", async () => {
    const members = new Map<string, Uint8Array>();
    for (let i = 0; i < 3; i += 1) {
      const data = randomBytes(random, 50_000 + i);
      members.set(`frames/${i}.bin`, data);
      expect((await run(["put", `groups/frames/${i}.bin`, "-", "--ball-id", "take-1"], { stdin: data })).code).toBe(0);
    }
    expect((await run(["put", "groups/other.bin", "-", "--ball-id", "take-2"], { stdin: randomBytes(random, 10) })).code).toBe(0);
    const ls = JSON.parse((await run(["ls", "groups", "--ball-id", "take-1", "--json"])).stdout);
    expect(ls.map((ball: { key: string }) => ball.key).sort()).toEqual([...members.keys()].sort());

    const out = join(dir, "group-out");
    const get = await run(["get", "groups", "--ball-id", "take-1", "-o", out]);
    expect(get.code).toBe(0);
    expect(get.stdout.trim().split("\n").length).toBe(3);
    expect(get.stdout).toContain(`got groups/frames/0.bin → ${join(out, "frames/0.bin")}`);
    for (const [name, data] of members) expect(same(readFileSync(join(out, name)), data)).toBe(true);
    expect((await run(["get", "groups", "--ball-id", "take-1", "-o", "-"])).code).toBe(2);

    const del = await run(["del", "groups", "--ball-id", "take-1", "--json"]);
    expect(del.code).toBe(0);
    const deleted = JSON.parse(del.stdout);
    expect(Object.keys(deleted).sort()).toEqual(["ballId", "bucket", "deleted"]);
    expect(deleted.deleted.sort()).toEqual([...members.keys()].sort());
    expect((await run(["del", "groups", "--ball-id", "take-1"])).code).toBe(4);
    expect((await run(["get", "groups", "--ball-id", "take-1", "-o", out])).code).toBe(4);
    expect((await run(["get", "groups/other.bin", "-o", "-"])).code).toBe(0);
  });

  test("usage errors exit 2 and say what to do; a missing ball exits 4 and leaves no file", async () => {
    const file = join(dir, "small.bin");
    writeFileSync(file, randomBytes(random, 100));
    const tooBig = await run(["put", "usage/x", file, "--chunk-size", "9MiB"]);
    expect(tooBig.code).toBe(2);
    expect(tooBig.stderr).toContain("--chunk-size must be 4.0 KiB to 8.0 MiB");
    const reserved = await run(["put", "usage/x", file, "--tag", "compression=zstd"]);
    expect(reserved.code).toBe(2);
    expect(reserved.stderr).toContain("--tag compression=… is set by mictlanx itself");
    expect((await run(["put", "usage/x", file, "--tag", "novalue"])).code).toBe(2);
    expect((await run(["put", "usage/x", join(dir, "no-such-file")])).code).toBe(2);
    expect((await run(["put", "usage/x", file, "--rf", "0"])).code).toBe(2);
    const rf = await run(["put", "usage/x", file, "--rf", "9"]);
    expect(rf.code).toBe(1);
    expect(rf.stderr).toContain("lower --rf or start more peers");

    const outDir = join(dir, "missing-out");
    mkdirSync(outDir);
    const missing = await run(["get", "usage/none", "-o", join(outDir, "none.bin")]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toContain("usage/none does not exist");
    expect(readdirSync(outDir)).toEqual([]);
  });
});

describe("encryption and compression in the shell", () => {
  const key = randomBytes(random, 32);
  const keyHex = Buffer.from(key).toString("hex");

  test("MICTLANX_KEY: put encrypts, get decrypts; no key, a wrong key and a malformed key are each explained", async () => {
    const data = randomBytes(random, 2 * MiB + 7);
    const put = await run(["put", "vault/doc.bin", "-", "--json"], { stdin: data, env: { MICTLANX_KEY: keyHex } });
    expect(put.code).toBe(0);
    expect(JSON.parse(put.stdout)).toMatchObject({ encrypted: true, compressed: false, size: data.byteLength });
    expect(JSON.parse(put.stdout).checksum).not.toBe(sha256(data)); // of the sealed chunks: nothing of the plaintext
    const get = await run(["get", "vault/doc.bin", "-o", "-"], { env: { MICTLANX_KEY: keyHex } });
    expect(get.code).toBe(0);
    expect(same(get.bytes, data)).toBe(true);

    const keyless = await run(["get", "vault/doc.bin", "-o", "-"]);
    expect(keyless.code).toBe(2);
    expect(keyless.stdout).toBe("");
    expect(keyless.stderr).toContain("vault/doc.bin is encrypted (aes-256-gcm); give the key it was put with");
    const wrong = await run(["get", "vault/doc.bin", "-o", join(dir, "doc.bin")], { env: { MICTLANX_KEY: Buffer.from(randomBytes(random, 32)).toString("hex") } });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toBe("mictlanx: cannot decrypt chunk 0 of vault/doc.bin: wrong key or the chunk was altered\n");
    expect(existsSync(join(dir, "doc.bin"))).toBe(false);
    const malformed = await run(["get", "vault/doc.bin", "-o", "-"], { env: { MICTLANX_KEY: "not-hex" } });
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain("MICTLANX_KEY must be 64 hex digits");

    const stat = await run(["stat", "vault/doc.bin"]);
    expect(stat.stdout).toContain("encryption    aes-256-gcm (client-side; the key is not stored)");
    expect(stat.stdout).not.toContain(keyHex);
    expect((await run(["ls", "vault"])).stdout).toContain("\tencrypted");
    // Commands that need no key do not trip over a bad one.
    expect((await run(["ls", "vault"], { env: { MICTLANX_KEY: "not-hex" } })).code).toBe(0);
    expect((await run(["stat", "vault/doc.bin"], { env: { MICTLANX_KEY: "not-hex" } })).code).toBe(0);
  });

  test("--key-file (32 raw bytes or 64 hex digits) and --compress", async () => {
    const rawKeyFile = join(dir, "key.raw");
    const hexKeyFile = join(dir, "key.hex");
    writeFileSync(rawKeyFile, key);
    writeFileSync(hexKeyFile, `${keyHex}\n`);
    const text = new TextEncoder().encode(Array.from({ length: 50_000 }, (_, i) => `line ${i % 500}: ok\n`).join(""));
    const source = join(dir, "log.txt");
    writeFileSync(source, text);

    const put = await runWithFlags("put", ["vault/log.txt", source], ["--compress", "--key-file", rawKeyFile, "--json"], { ...putDefaults, compress: true, keyFile: rawKeyFile, json: true });
    expect(put.stderr).toBe("");
    expect(put.code).toBe(0);
    const result = JSON.parse(put.stdout);
    expect(result).toMatchObject({ compressed: true, encrypted: true, size: text.byteLength });
    expect(result.checksum).not.toBe(sha256(text));
    expect(result.storedBytes).toBeLessThan(text.byteLength / 4);
    const stat = JSON.parse((await run(["stat", "vault/log.txt", "--json"])).stdout);
    expect(stat.tags).toMatchObject({ compression: "zstd", encryption: "aes-256-gcm" });

    const get = await runWithFlags("get", ["vault/log.txt"], ["--key-file", hexKeyFile], { ...getDefaults, keyFile: hexKeyFile });
    expect(get.code).toBe(0);
    expect(same(get.bytes, text)).toBe(true);
    // The same key through the environment reads it too.
    expect(same((await run(["get", "vault/log.txt", "-o", "-"], { env: { MICTLANX_KEY: keyHex } })).bytes, text)).toBe(true);

    const badFile = join(dir, "key.bad");
    writeFileSync(badFile, "short");
    const bad = await runWithFlags("get", ["vault/log.txt"], ["--key-file", badFile], { ...getDefaults, keyFile: badFile });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("must hold 32 raw bytes or 64 hex digits");
    const zipOnly = await runWithFlags("put", ["vault/plain-zip.txt", source], ["--compress", "--json"], { ...putDefaults, compress: true, json: true });
    expect(JSON.parse(zipOnly.stdout)).toMatchObject({ compressed: true, encrypted: false });
    expect(same((await run(["get", "vault/plain-zip.txt", "-o", "-"])).bytes, text)).toBe(true);
  });
});

describe("on a terminal", () => {
  test.skipIf(!Bun.which("script"))("a progress bar with rate and ETA on stderr for a transfer over a second, cleared at the end", async () => {
    const data = randomBytes(random, 160 * MiB);
    const file = join(dir, "tty.bin");
    writeFileSync(file, data);
    const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;
    // 64 KiB chunks: slow enough to pass a second on any machine.
    const command = [...programCommand(), "put", "tty/big.bin", file, "--chunk-size", "64KiB", "--rf", "2"].map(quote).join(" ");
    // script(1) runs the command with $SHELL, which some machines leave unset or set to nologin.
    const proc = Bun.spawn(["script", "-qefc", `MICTLANX_ROUTERS=${env.MICTLANX_ROUTERS} ${command}`, "/dev/null"], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, SHELL: "/bin/sh" },
    });
    const [screen, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect(code).toBe(0);
    expect(screen).toContain("put tty/big.bin [");
    expect(screen).toMatch(/\d+%/);
    expect(screen).toMatch(/MiB\/s/);
    expect(screen).toContain("ETA");
    expect(screen).toContain("\r\u001b[K"); // cleared before the result line
    expect(screen).toMatch(/put tty\/big\.bin: 160 MiB in 2560 chunk\(s\)/);
  }, 60_000);
});
