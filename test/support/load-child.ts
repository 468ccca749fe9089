// One client process of a fault test's load: puts and gets (by workers of their own) through the real client library
// for a bounded time and count, seeded, and says on stdout, one JSON line each, every put that
// was acknowledged ({"ack", "sha256", "size"}) and, at the end, what it measured ({"done": …}):
// the longest time without a successful put and without a successful get, errors, and any get
// whose bytes differed from what it put (never excused). The parent reads every acknowledged
// ball back and compares it with the sha256 said here.
//
//   bun test/support/load-child.ts '{"routers":"a,b","bucket":"b","seed":1,"prefix":"c0","durationMs":8000,"opsMax":4000}'
// Credentials from MICTLANX_ACCESS_KEY / MICTLANX_SECRET_KEY / MICTLANX_CA (none: --insecure).
import { createHash } from "node:crypto";
import { Client } from "../../src/client/client.ts";
import { mulberry32, randomBytes } from "./random.ts";

const options = JSON.parse(process.argv[2] ?? "{}") as { routers: string; bucket: string; seed: number; prefix: string; durationMs: number; opsMax: number; sizeMax?: number; workers?: number };
const env = process.env;
const client = new Client({
  routers: options.routers,
  cacheBytes: 0,
  retryWindowMs: 30_000,
  chunkSize: 64 * 1024,
  ...(env.MICTLANX_ACCESS_KEY ? { accessKey: env.MICTLANX_ACCESS_KEY, secretKey: env.MICTLANX_SECRET_KEY ?? "", ...(env.MICTLANX_CA ? { ca: env.MICTLANX_CA } : {}) } : {}),
});
const random = mulberry32(options.seed);
const acked = new Map<string, string>(); // key → sha256, for this process's own gets
const say = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`);
const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

const startedMs = performance.now();
const last = { putMs: startedMs, getMs: startedMs };
const gaps = { putMs: 0, getMs: 0 };
const counts = { puts: 0, gets: 0, putErrors: 0, getErrors: 0 };
const wrong: string[] = [];
const errors: string[] = [];
let ops = 0;
let next = 0;

/** Puts only: a put stalled (a failover) never keeps a get from running, and the other way round. */
async function putter(): Promise<void> {
  while (performance.now() - startedMs < options.durationMs && ops < options.opsMax) {
    ops += 1;
    const key = `${options.prefix}/${String(next++).padStart(6, "0")}`;
    const data = randomBytes(random, 1 + Math.floor(random() ** 3 * (options.sizeMax ?? 256 * 1024)));
    try {
      await client.put(options.bucket, key, data, { rf: 2 });
      const nowMs = performance.now();
      gaps.putMs = Math.max(gaps.putMs, nowMs - last.putMs);
      last.putMs = nowMs;
      counts.puts += 1;
      acked.set(key, sha256(data));
      say({ ack: key, sha256: acked.get(key), size: data.byteLength });
    } catch (error) {
      counts.putErrors += 1;
      if (errors.length < 20) errors.push(`put ${key}: ${(error as Error).message}`);
    }
  }
}

/** Gets only, of what this process put (none yet: a short wait). */
async function getter(): Promise<void> {
  while (performance.now() - startedMs < options.durationMs && ops < options.opsMax) {
    const keys = [...acked.keys()];
    if (keys.length === 0) {
      await Bun.sleep(5);
      last.getMs = performance.now(); // the gap counts from the first ball there is to get
      continue;
    }
    ops += 1;
    const key = keys[Math.floor(random() * keys.length)]!;
    try {
      const got = await client.get(options.bucket, key);
      const nowMs = performance.now();
      gaps.getMs = Math.max(gaps.getMs, nowMs - last.getMs);
      last.getMs = nowMs;
      counts.gets += 1;
      if (sha256(got) !== acked.get(key)) wrong.push(key);
    } catch (error) {
      counts.getErrors += 1;
      if (errors.length < 20) errors.push(`get ${key}: ${(error as Error).message}`);
    }
  }
}

const workers = options.workers ?? 2;
await Promise.all([...Array.from({ length: workers }, putter), ...Array.from({ length: workers }, getter)]);
const endMs = performance.now();
gaps.putMs = Math.max(gaps.putMs, endMs - last.putMs);
gaps.getMs = Math.max(gaps.getMs, endMs - last.getMs);
say({ done: { ...counts, longestPutGapMs: Math.round(gaps.putMs), longestGetGapMs: Math.round(gaps.getMs), wrong, errors } });
client.close();
