// A whole tree in, back and out, as a user would from the shell (issue 11's "done when"):
// builds a seeded tree of small files in a temp dir, starts a fresh local VSS from
// dist/mictlanx (3 peers, 1 router), then times
//   put BUCKET DIR --recursive,   get BUCKET --recursive -o OUT,   del BUCKET --recursive --yes
// checks `diff -r DIR OUT` (byte-exact, every file and empty directory) and that nothing is
// left in the bucket, prints files/s and MB/s per phase, and removes everything.
//
//   npm run build && bun bench/tree.ts                    (50,000 files, ~200 MB: a few minutes)
//   bun bench/tree.ts --files 5000 --seed 7 [--keep]      (MICTLANX_BIN picks another binary)
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { startLocalVss } from "../src/local/vss.ts";
import { mulberry32 } from "../test/support/random.ts";
import { buildTree } from "../test/support/tree.ts";

interface Args {
  files: number;
  seed: number;
  keep: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { files: 50_000, seed: 1, keep: false };
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    if (flag === "--keep") {
      args.keep = true;
      continue;
    }
    const value = Number(argv[(i += 1)]);
    if (flag === "--files") args.files = value;
    else if (flag === "--seed") args.seed = value;
    else throw new Error(`unknown flag ${flag}; use --files N --seed N [--keep]`);
    if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${flag} needs a whole number ≥ 1`);
  }
  return args;
}

const binary = resolve(process.env.MICTLANX_BIN ?? join(import.meta.dir, "..", "dist", "mictlanx"));
const log = (line: string) => process.stderr.write(`${line}\n`);

interface Phase {
  what: string;
  files: number;
  bytes: number;
  seconds: number;
}

/** Run the binary to its end; fail the bench on a non-zero exit or anything on stderr. */
async function timed(args: string[], env: Record<string, string>): Promise<{ seconds: number; stdout: string }> {
  const started = performance.now();
  const proc = Bun.spawn([binary, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0 || stderr !== "") throw new Error(`mictlanx ${args.join(" ")} exited ${code}: ${stderr.slice(0, 2000)}`);
  return { seconds, stdout };
}

function row(phase: Phase): string {
  const mb = phase.bytes / 1e6;
  return `| ${phase.what} | ${phase.files.toLocaleString("en-US")} | ${mb.toFixed(0)} | ${phase.seconds.toFixed(1)} | ${Math.round(phase.files / phase.seconds).toLocaleString("en-US")} | ${(mb / phase.seconds).toFixed(1)} |`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const work = mkdtempSync(join(tmpdir(), "mictlanx-bench-tree-"));
  const tree = join(work, "tree");
  const out = join(work, "out");
  try {
    log(`building a tree of ${args.files} files (seed ${args.seed}) in ${tree}…`);
    // Small files (mean 4 KiB, up to 20 KiB), ~25 a directory, a few empty directories.
    const built = buildTree(tree, mulberry32(args.seed), { files: args.files, dirs: Math.ceil(args.files / 25), emptyDirs: Math.ceil(args.files / 2500), bytesMax: 20 * 1024 });
    log(`starting a VSS (3 peers, 1 router) from ${binary}…`);
    const vss = await startLocalVss({ dir: join(work, "vss"), peers: 3, routers: 1, basePort: 0, command: [binary] });
    const phases: Phase[] = [];
    try {
      const env = { MICTLANX_ROUTERS: vss.routers.map((router) => router.address).join(","), MICTLANX_CREDENTIALS: vss.security.insecure ? "" : vss.security.credentialsPath };
      log("put --recursive…");
      const put = await timed(["put", "tree", tree, "--recursive"], env);
      const stored = put.stdout.split("\n").filter((line) => line.startsWith("put ")).length;
      phases.push({ what: "put --recursive", files: stored, bytes: built.bytes, seconds: put.seconds });
      log("get --recursive…");
      const get = await timed(["get", "tree", "--recursive", "-o", out], env);
      const summary = get.stdout.trimEnd().split("\n").at(-1) ?? "";
      const got = /^got (\d+) file\(s\) and (\d+) folder\(s\)/.exec(summary);
      if (!got) throw new Error(`get --recursive ended without its summary: ${summary}`);
      phases.push({ what: "get --recursive", files: Number(got[1]) + Number(got[2]), bytes: built.bytes, seconds: get.seconds });
      log("diff -r…");
      const diff = Bun.spawnSync(["diff", "-r", tree, out]);
      if (diff.exitCode !== 0) throw new Error(`diff -r found differences:\n${diff.stdout.toString().slice(0, 2000)}${diff.stderr.toString().slice(0, 2000)}`);
      log("del --recursive…");
      const del = await timed(["del", "tree", "--recursive", "--yes", "--json"], env);
      const deleted = (JSON.parse(del.stdout) as { deleted: number }).deleted;
      phases.push({ what: "del --recursive", files: deleted, bytes: built.bytes, seconds: del.seconds });
      const left = await timed(["ls", "tree", "--json"], env);
      if (left.stdout.trim() !== "[]") throw new Error(`balls left after del --recursive: ${left.stdout.slice(0, 500)}`);
      if (stored !== deleted) throw new Error(`put stored ${stored} balls but del --recursive deleted ${deleted}`);
    } finally {
      await vss.stop();
    }
    const machine = `${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Bun ${Bun.version}, ${new Date().toISOString().slice(0, 10)}`;
    console.log(`machine: ${machine}`);
    console.log(`tree: ${built.files.toLocaleString("en-US")} files, ${built.dirs.toLocaleString("en-US")} directories, ${(built.bytes / 1e6).toFixed(0)} MB (seed ${args.seed}); diff -r: identical\n`);
    console.log("| phase | balls | MB | seconds | files/s | MB/s |");
    console.log("|---|---:|---:|---:|---:|---:|");
    for (const phase of phases) console.log(row(phase));
  } finally {
    if (args.keep) log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

await main();
