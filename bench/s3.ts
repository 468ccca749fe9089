// The S3 path beside the native client, in one run on one VSS (3 peers, 1 router with S3 on, as
// `up` starts it, in a temp dir): put then get at c=16 of 4 KiB and 64 MiB objects through
// @aws-sdk/client-s3 (its defaults: CRC32 checksums, aws-chunked uploads) and through the native
// client library (`mictlanx bench`'s runBench), printed as a markdown table with S3/native.
//
//   npm run bench:s3                     (the sizes; minutes on 2 cores)
//   npm run bench:s3 -- --quick          (a smoke run at tiny counts)
// Every S3 read is compared byte-exact with what was put; a mismatch counts as an error.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent } from "node:https";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { startLocalVss, type LocalVss } from "../src/local/vss.ts";
import { runBench } from "../src/bench/bench.ts";
import { summarize, type PhaseResult } from "../src/bench/stats.ts";

const quick = process.argv.includes("--quick");
const root = resolve(import.meta.dir, "..");
const command = process.env.MICTLANX_BIN ? [resolve(process.env.MICTLANX_BIN)] : [process.execPath, join(root, "src", "main.ts")];
const KiB = 1024;
const MiB = 1024 * KiB;
const concurrency = 16;
/** Objects per phase: [4 KiB, 64 MiB]. */
const counts = quick ? [64, 2] : [4_000, 64];

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function s3Client(vss: LocalVss, endpoint: string): S3Client {
  if (vss.security.insecure) throw new Error("bench:s3 runs with TLS and keys, as users do");
  const { accessKey, secretKey, ca } = vss.security.credentials;
  const agent = new Agent({ ca: readFileSync(ca, "utf8"), keepAlive: true, maxSockets: concurrency });
  return new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: accessKey, secretAccessKey: secretKey }, requestHandler: new NodeHttpHandler({ httpsAgent: agent }) });
}

/** `count` operations at c=16, timed; errors are counted and sampled, never hidden. */
async function phase(op: string, size: number, count: number, work: (index: number) => Promise<void>): Promise<PhaseResult> {
  const latencies: number[] = [];
  const errors: string[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < count) {
      const index = next++;
      const opStarted = performance.now();
      try {
        await work(index);
        latencies.push(performance.now() - opStarted);
      } catch (error) {
        errors.push(`${op} #${index}: ${(error as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return summarize({ op, size, concurrency, rf: 2 }, latencies, (performance.now() - started) / 1000, errors);
}

/** One base body per size with the index stamped in its first 8 bytes, so every object differs. */
function bodyOf(base: Uint8Array, index: number): Uint8Array {
  const body = base.slice();
  if (body.byteLength >= 8) new DataView(body.buffer).setFloat64(0, index);
  return body;
}

async function s3Phases(s3: S3Client, size: number, count: number): Promise<PhaseResult[]> {
  const bucket = `bench-s3-${size}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const base = crypto.getRandomValues(new Uint8Array(Math.min(size, 65_536)));
  const full = new Uint8Array(size);
  for (let at = 0; at < size; at += base.byteLength) full.set(base.subarray(0, Math.min(base.byteLength, size - at)), at);
  const put = await phase("s3 put", size, count, async (index) => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `o-${index}`, Body: bodyOf(full, index) }));
  });
  const get = await phase("s3 get", size, count, async (index) => {
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `o-${index}` }));
    const bytes = Buffer.from((await got.Body?.transformToByteArray()) ?? []);
    if (!bytes.equals(Buffer.from(bodyOf(full, index)))) throw new Error(`object o-${index} came back different (${bytes.byteLength} bytes)`);
  });
  return [put, get];
}

async function nativePhases(vss: LocalVss, size: number, count: number): Promise<PhaseResult[]> {
  if (vss.security.insecure) throw new Error("bench:s3 runs with TLS and keys, as users do");
  return runBench({ routers: vss.routers.map((router) => router.address).join(","), credentials: vss.security.credentials, size, count, concurrency, rf: 2, op: "all" });
}

function row(what: string, s3: PhaseResult | undefined, native: PhaseResult | undefined): string {
  const ratio = (a = 0, b = 0) => (b > 0 ? `${((a / b) * 100).toFixed(0)} %` : "–");
  const errors = (s3?.errors ?? 0) + (native?.errors ?? 0);
  return `| ${what} | ${native?.opsPerSec.toFixed(1)} | ${s3?.opsPerSec.toFixed(1)} | ${ratio(s3?.opsPerSec, native?.opsPerSec)} | ${native?.mbPerSec.toFixed(1)} | ${s3?.mbPerSec.toFixed(1)} | ${ratio(s3?.mbPerSec, native?.mbPerSec)} | ${errors} |`;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "mictlanx-bench-s3-"));
  const vss = await startLocalVss({ dir: join(work, "vss"), peers: 3, routers: 1, basePort: 0, s3: true, command });
  const endpoint = vss.routers[0]?.s3Url;
  try {
    if (endpoint === undefined) throw new Error("the router printed no S3 endpoint");
    const s3 = s3Client(vss, endpoint);
    const lines = ["| c=16 | native ops/s | S3 ops/s | S3/native | native MB/s | S3 MB/s | S3/native | errors |", "|---|---|---|---|---|---|---|---|"];
    for (const [index, size] of [4 * KiB, 64 * MiB].entries()) {
      const count = counts[index] ?? 1;
      log(`native ${size} B × ${count}…`);
      const native = await nativePhases(vss, size, count);
      log(`S3 ${size} B × ${count}…`);
      const [s3Put, s3Get] = await s3Phases(s3, size, count);
      const label = size >= MiB ? `${size / MiB} MiB` : `${size / KiB} KiB`;
      lines.push(row(`${label} put`, s3Put, native.find((result) => result.op === "put")));
      lines.push(row(`${label} get`, s3Get, native.find((result) => result.op === "get")));
      for (const result of [...native, s3Put, s3Get]) for (const sample of result?.errorSamples ?? []) log(`error: ${sample}`);
    }
    s3.destroy();
    console.log(lines.join("\n"));
  } finally {
    for (const role of [vss.spm, ...vss.routers, ...vss.peers]) if (role.proc.exitCode === null) process.kill(role.pid, "SIGKILL");
    await Promise.all([vss.spm, ...vss.routers, ...vss.peers].map((role) => role.exited));
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
