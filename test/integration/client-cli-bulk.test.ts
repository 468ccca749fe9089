// Whole trees and buckets from the shell (issue 11, points 3, 4 and 10), through the real
// binary (MICTLANX_BIN=dist/mictlanx to test the compiled one): a seeded tree goes in with
// put --recursive, comes back byte-exact with get --recursive (diff -r), and goes with one
// del --recursive, batched on the SPM; symbolic links by the documented rule; mb and rb;
// del --recursive asking on a terminal and refusing without one; ls's header on a terminal.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes, seededRandom } from "../support/random.ts";
import { cli, programCommand, startTestVss, tempDir } from "../support/vss.ts";
import { buildTree } from "../support/tree.ts";
import { parsePrometheus, total } from "../support/prometheus.ts";
import { limits } from "../../src/lib/limits.ts";

const { random, seed } = seededRandom("client-cli-bulk");
const dir = tempDir("client-cli-bulk");
let vss: Awaited<ReturnType<typeof startTestVss>>;
let env: Record<string, string>;

beforeAll(async () => {
  vss = await startTestVss({ label: "client-cli-bulk", peers: 3, routers: 1 });
  env = { MICTLANX_ROUTERS: vss.routers.map((router) => router.address).join(",") };
});
afterAll(async () => {
  await vss?.cleanup();
  if (!process.env.MICTLANX_KEEP) rmSync(dir, { recursive: true, force: true });
});

const run = (args: string[]) => cli(args, { env });
const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;

/** The command on a terminal (script(1)), with `input` typed into it; what the terminal showed. */
async function onTerminal(args: string[], input = ""): Promise<{ code: number; screen: string }> {
  const command = [...programCommand(), ...args].map(quote).join(" ");
  // script(1) runs the command with $SHELL, which some machines leave unset or set to nologin.
  const proc = Bun.spawn(["script", "-qefc", `MICTLANX_ROUTERS=${env.MICTLANX_ROUTERS} ${command}`, "/dev/null"], {
    stdin: new Blob([input]),
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, SHELL: "/bin/sh" },
  });
  const [screen, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  return { code, screen };
}

async function routerRequests(op: string): Promise<number> {
  const text = await (await fetch(vss.routers[0]!.metricsUrl!)).text();
  return total(parsePrometheus(text), "mictlanx_router_requests_total", { op });
}

async function lsKeys(target: string): Promise<string[]> {
  const listed = await run(["ls", target, "--json"]);
  expect(listed.code).toBe(0);
  return (JSON.parse(listed.stdout) as Array<{ key: string }>).map((ball) => ball.key);
}

function diffTrees(a: string, b: string): { code: number; output: string } {
  const diff = Bun.spawnSync(["diff", "-r", a, b]);
  return { code: diff.exitCode, output: `${diff.stdout.toString()}${diff.stderr.toString()}` };
}

describe(`a tree in, back and out (seed ${seed})`, () => {
  test("put --recursive into a bucket's root, get --recursive byte-exact (diff -r), one batched del --recursive", async () => {
    const tree = join(dir, "tree");
    const built = buildTree(tree, random, { files: 300, dirs: 40, emptyDirs: 3, bytesMax: 48 * 1024 });
    // A link to a file and a link to a directory: with --follow-symlinks both come back as what they lead to.
    mkdirSync(join(tree, "real-dir"));
    writeFileSync(join(tree, "real-dir", "inside.txt"), randomBytes(random, 1000));
    symlinkSync(join(tree, "real-dir", "inside.txt"), join(tree, "link-to-file"));
    symlinkSync(join(tree, "real-dir"), join(tree, "link-to-dir"));

    const put = await run(["put", "tree", tree, "--recursive", "--follow-symlinks"]);
    expect(put.stderr).toBe("");
    expect(put.code).toBe(0);
    const keys = await lsKeys("tree");
    // Every file (the links' targets under their own names too) and one folder marker per empty directory.
    const markers = keys.filter((key) => key.endsWith("/"));
    expect(markers.length).toBeGreaterThanOrEqual(3);
    expect(keys.length - markers.length).toBe(built.files + 1 /* link-to-file */ + 2 /* real-dir/inside.txt, link-to-dir/inside.txt */);
    expect(keys).toContain("link-to-dir/inside.txt");

    const out = join(dir, "out");
    const get = await run(["get", "tree", "--recursive", "-o", out]);
    expect(get.stderr).toBe("");
    expect(get.code).toBe(0);
    const lines = get.stdout.trim().split("\n");
    expect(lines.length).toBe(keys.length - markers.length + 1);
    expect(lines.at(-1)).toMatch(new RegExp(`^got ${keys.length - markers.length} file\\(s\\) and ${markers.length} folder\\(s\\), .+ in \\d+\\.\\d s \\(\\d+ files/s, .+/s\\); skipped 0, failed 0$`));
    expect(diffTrees(tree, out)).toEqual({ code: 0, output: "" });
    expect(readdirSync(out, { recursive: true }).some((name) => String(name).includes("mictlanx-partial"))).toBe(false);

    // One del --recursive, done on the SPM in batches: no ball.delete, a ball.deletePrefix per batch.
    const deletesBefore = await routerRequests("ball.delete");
    const batchesBefore = await routerRequests("ball.deletePrefix");
    const del = await run(["del", "tree", "--recursive", "--yes", "--json"]);
    expect(del.code).toBe(0);
    expect(JSON.parse(del.stdout)).toMatchObject({ bucket: "tree", prefix: "", deleted: keys.length });
    expect(await routerRequests("ball.delete")).toBe(deletesBefore);
    expect(await routerRequests("ball.deletePrefix")).toBe(batchesBefore + Math.ceil(keys.length / limits.deleteBatchBallsMax));
    expect(await lsKeys("tree")).toEqual([]);
    // The bucket stays, empty, until rb; getting or deleting from it again finds nothing (exit 4).
    expect(JSON.parse((await run(["ls", "--json"])).stdout)).toContainEqual(expect.objectContaining({ name: "tree", balls: 0, bytes: 0 }));
    expect((await run(["get", "tree", "--recursive", "-o", join(dir, "again")])).code).toBe(4);
    expect(existsSync(join(dir, "again"))).toBe(false);
    expect((await run(["del", "tree", "--recursive", "--yes"])).code).toBe(4);
  }, 120_000);

  test("a prefix is a directory: put under it, get strips it, del takes only what is under it", async () => {
    const tree = join(dir, "small");
    buildTree(tree, random, { files: 12, dirs: 3, emptyDirs: 1, bytesMax: 4096 });
    for (const prefix of ["runs/run-1", "runs/run-10", "runs/run-1-old/"]) expect((await run(["put", `p/${prefix}`, tree, "--recursive"])).code).toBe(0);
    // A ball named like the prefix itself, from a file outside the tree: a seeded tree may hold
    // no file at its top.
    const lone = join(dir, "lone.bin");
    writeFileSync(lone, randomBytes(random, 100));
    expect((await run(["put", "p/runs/run-1", lone])).code).toBe(0);
    const out = join(dir, "run-1");
    const get = await run(["get", "p/runs/run-1", "--recursive", "-o", out]);
    expect(get.code).toBe(0);
    expect(diffTrees(tree, out)).toEqual({ code: 0, output: "" });
    const del = await run(["del", "p/runs/run-1", "--recursive", "--yes"]);
    expect(del.code).toBe(0);
    const left = await lsKeys("p");
    expect(left.some((key) => key.startsWith("runs/run-1/"))).toBe(false);
    expect(left.filter((key) => key.startsWith("runs/run-10/")).length).toBeGreaterThan(0);
    expect(left.filter((key) => key.startsWith("runs/run-1-old/")).length).toBeGreaterThan(0);
    expect(left).toContain("runs/run-1");
    expect(del.stdout).toMatch(/^deleted \d+ ball\(s\), .+, in p\/runs\/run-1\/ in \d+\.\d s\n$/);
  });

  test("get --recursive skips what would land outside DIR or cannot be a directory (exit 1, the rest written); usage and not found", async () => {
    const data = randomBytes(random, 3000);
    const file = join(dir, "esc.bin");
    writeFileSync(file, data);
    // A key S3 allows but no file may take, and a "folder marker" that holds bytes.
    for (const key of ["ok/a.bin", "ok/../../escape.bin", "ok/full-marker/", "ok/b.bin"]) expect((await run(["put", `esc/${key}`, file])).code).toBe(0);
    const out = join(dir, "esc-out");
    const get = await run(["get", "esc/ok", "--recursive", "-o", out]);
    expect(get.code).toBe(1);
    expect(get.stderr).toContain(`mictlanx: get esc/ok/../../escape.bin skipped: its key has a ".." part; nothing is written outside ${out}`);
    expect(get.stderr).toContain(`mictlanx: get esc/ok/full-marker/ skipped: its key ends in "/" but it holds ${data.byteLength} bytes`);
    expect(get.stdout).toMatch(/; skipped 2, failed 0\n$/);
    expect(readFileSync(join(out, "b.bin"))).toEqual(Buffer.from(data));
    expect(existsSync(join(out, "a.bin"))).toBe(true);
    expect(existsSync(join(dir, "escape.bin"))).toBe(false);

    expect((await run(["get", "esc/nothing", "--recursive", "-o", out])).code).toBe(4);
    const noBucket = await run(["get", "no-such-bucket", "--recursive", "-o", out]);
    expect(noBucket.code).toBe(4);
    expect(noBucket.stderr).toContain("no such bucket no-such-bucket");
    expect((await run(["get", "esc/ok", "--recursive"])).code).toBe(2); // -o - : a tree needs a directory
    expect((await run(["get", "esc/ok", "--recursive", "--ball-id", "g", "-o", out])).code).toBe(2);
    writeFileSync(join(dir, "a-file"), "x");
    expect((await run(["get", "esc/ok", "--recursive", "-o", join(dir, "a-file")])).code).toBe(2);
  });
});

describe("get --recursive and Ctrl-C", () => {
  test("SIGINT stops every transfer, removes their partial files, and exits 1 saying so", async () => {
    const tree = join(dir, "big");
    mkdirSync(tree);
    for (let i = 0; i < 24; i += 1) writeFileSync(join(tree, `f${String(i).padStart(2, "0")}.bin`), randomBytes(random, 4 * 1024 * 1024));
    expect((await run(["put", "big", tree, "--recursive", "--chunk-size", "256KiB"])).code).toBe(0);
    const out = join(dir, "big-out");
    const proc = Bun.spawn([...programCommand(), "get", "big", "--recursive", "-o", out], { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
    const reader = proc.stdout.getReader();
    const decoder = new TextDecoder();
    /** stdout until `enough` says so, or to its end. */
    const readUntil = async (enough: (text: string) => boolean) => {
      let text = "";
      for (let piece = await reader.read(); !piece.done; piece = await reader.read()) {
        text += decoder.decode(piece.value);
        if (enough(text)) break;
      }
      return text;
    };
    const seen = await readUntil((text) => text.includes("\n"));
    expect(seen).toStartWith("got big/f"); // one file is written: the rest are under way
    process.kill(proc.pid, "SIGINT");
    const [rest, stderr, code] = await Promise.all([readUntil(() => false), new Response(proc.stderr).text(), proc.exited]);
    expect({ code, stderr }).toEqual({ code: 1, stderr: expect.stringContaining(`interrupted; the files being written were removed, those done are in ${out}`) });
    const written = readdirSync(out);
    expect(written.filter((name) => name.includes("mictlanx-partial"))).toEqual([]);
    expect(written.length).toBeLessThan(24);
    expect(`${seen}${rest}`).not.toContain("skipped"); // no summary: it was stopped
    for (const name of written) expect(readFileSync(join(out, name))).toEqual(readFileSync(join(tree, name)));
  }, 120_000);
});

describe("symbolic links under put --recursive", () => {
  test("links to files are followed; links to directories, dangling links and loops are skipped, each said and counted (exit 0)", async () => {
    const tree = join(dir, "links");
    mkdirSync(join(tree, "sub"), { recursive: true });
    writeFileSync(join(tree, "real.txt"), "real");
    writeFileSync(join(tree, "sub", "deep.txt"), "deep");
    symlinkSync(join(tree, "real.txt"), join(tree, "to-file"));
    symlinkSync(join(tree, "sub"), join(tree, "to-dir"));
    symlinkSync(join(tree, "nowhere"), join(tree, "dangling"));
    symlinkSync(tree, join(tree, "sub", "loop"));

    const put = await run(["put", "links", tree, "--recursive"]);
    expect(put.code).toBe(0);
    expect(put.stderr).toContain(`mictlanx: skipped ${join(tree, "to-dir")}: a symbolic link to the directory ${join(tree, "sub")}; add --follow-symlinks to put what is under it`);
    expect(put.stderr).toContain(`mictlanx: skipped ${join(tree, "dangling")}: a symbolic link to ${join(tree, "nowhere")}, which does not exist`);
    expect(put.stderr).toContain("mictlanx: skipped 3: 2 symbolic links to directories (add --follow-symlinks to put what is under them), 1 dangling symbolic link\n");
    expect(await lsKeys("links")).toEqual(["real.txt", "sub/deep.txt", "to-file"]);
    expect((await run(["get", "links/to-file", "-o", "-"])).stdout).toBe("real");

    const followed = await run(["put", "links/followed", tree, "--recursive", "--follow-symlinks"]);
    expect(followed.code).toBe(0);
    // Into to-dir once; never round the loop back into the tree it is inside of.
    expect(followed.stderr).toContain(`mictlanx: skipped ${join(tree, "sub", "loop")}: a symbolic link to ${tree}, a directory it is inside of`);
    expect(followed.stderr).toContain("1 dangling symbolic link");
    expect((await lsKeys("links/followed/")).sort()).toEqual(["followed/real.txt", "followed/sub/deep.txt", "followed/to-dir/deep.txt", "followed/to-file"]);
    expect((await run(["put", "links/x", join(tree, "real.txt"), "--follow-symlinks"])).code).toBe(2); // only with --recursive
  });
});

describe("buckets: mb, rb, ls", () => {
  test("mb makes an empty bucket listed with 0 balls until rb; rb refuses a bucket with balls unless --force; ls of none exits 4", async () => {
    const made = await run(["mb", "albums", "--json"]);
    expect(made.code).toBe(0);
    expect(JSON.parse(made.stdout)).toMatchObject({ name: "albums", balls: 0, bytes: 0 });
    expect(JSON.parse((await run(["ls", "albums", "--json"])).stdout)).toEqual([]);
    expect(JSON.parse((await run(["ls", "--json"])).stdout)).toContainEqual(expect.objectContaining({ name: "albums", balls: 0 }));
    const again = await run(["mb", "albums"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("bucket albums already exists");
    expect((await run(["mb", "albums/x"])).code).toBe(2);

    const file = join(dir, "cover.jpg");
    writeFileSync(file, randomBytes(random, 5000));
    expect((await run(["put", "albums/2024/cover.jpg", file])).code).toBe(0);
    expect((await run(["del", "albums/2024/cover.jpg"])).code).toBe(0);
    expect(JSON.parse((await run(["ls", "--json"])).stdout)).toContainEqual(expect.objectContaining({ name: "albums", balls: 0 })); // stays

    expect((await run(["put", "albums/2024/cover.jpg", file])).code).toBe(0);
    const refused = await run(["rb", "albums"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("bucket albums holds 1 balls");
    expect(refused.stderr).toContain("mictlanx rb albums --force");
    const forced = await run(["rb", "albums", "--force"]);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toMatch(/^removed bucket albums and its 1 ball\(s\), 4\.9 KiB, in \d+\.\d s\n$/);
    expect(JSON.parse((await run(["ls", "--json"])).stdout)).not.toContainEqual(expect.objectContaining({ name: "albums" }));
    const gone = await run(["ls", "albums"]);
    expect(gone.code).toBe(4);
    expect(gone.stderr).toContain("no such bucket albums");
    expect((await run(["rb", "albums"])).code).toBe(4);
    // A native put still makes its bucket.
    expect((await run(["put", "made-by-put/k", file])).code).toBe(0);
    expect(JSON.parse((await run(["ls", "--json"])).stdout)).toContainEqual(expect.objectContaining({ name: "made-by-put", balls: 1 }));
    expect((await run(["rb", "made-by-put", "--force"])).code).toBe(0);
  });

  test.skipIf(!Bun.which("script"))("ls has a header on a terminal, none when piped", async () => {
    const file = join(dir, "h.txt");
    writeFileSync(file, "h");
    expect((await run(["put", "headed/h.txt", file])).code).toBe(0);
    const balls = await onTerminal(["ls", "headed"]);
    expect(balls.code).toBe(0);
    expect(balls.screen).toMatch(/^KEY\tSIZE\tVERSION\tBALL ID\r\nh\.txt\t1 B\tv1\th\.txt\r\n$/);
    const buckets = await onTerminal(["ls"]);
    expect(buckets.screen.startsWith("BUCKET\tBALLS\tSIZE\r\n")).toBe(true);
    expect((await run(["ls", "headed"])).stdout).toBe("h.txt\t1 B\tv1\th.txt\n");
    expect((await onTerminal(["ls", "headed", "--json"])).screen.startsWith("[{")).toBe(true);
  });
});

describe("del --recursive asks first", () => {
  const fill = async (bucket: string, count: number) => {
    const tree = join(dir, `fill-${bucket}`);
    mkdirSync(tree, { recursive: true });
    for (let i = 0; i < count; i += 1) writeFileSync(join(tree, `f${i}`), randomBytes(random, 10 + i));
    expect((await run(["put", `${bucket}/in`, tree, "--recursive"])).code).toBe(0);
  };

  test("without a terminal and without --yes it refuses (exit 2) and says to add --yes; nothing is deleted", async () => {
    await fill("ask", 5);
    const refused = await run(["del", "ask/in", "--recursive"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("there is no terminal to confirm on; add --yes");
    expect((await lsKeys("ask")).length).toBe(5);
    expect((await run(["del", "ask/in/f1", "--yes"])).code).toBe(2); // --yes is for --recursive
    expect((await run(["del", "ask", "--ball-id", "g", "--recursive", "--yes"])).code).toBe(2);
  });

  test.skipIf(!Bun.which("script"))("on a terminal it shows the count and deletes only on yes", async () => {
    await fill("tty", 7);
    const no = await onTerminal(["del", "tty/in", "--recursive"], "n\n");
    expect(no.code).toBe(0);
    expect(no.screen).toContain("delete 7 ball(s) in tty/in/? [y/N] ");
    expect(no.screen).toContain("nothing was deleted");
    expect((await lsKeys("tty")).length).toBe(7);
    const whole = await onTerminal(["del", "tty", "--recursive"], "y\n");
    expect(whole.code).toBe(0);
    expect(whole.screen).toMatch(/delete 7 ball\(s\) \(\d+ B\) in bucket tty\? \[y\/N\] /); // a whole bucket's bytes are known
    expect(whole.screen).toMatch(/deleted 7 ball\(s\), \d+ B, in bucket tty in \d+\.\d s/);
    expect(await lsKeys("tty")).toEqual([]);
  });
});
