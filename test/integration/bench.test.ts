// `mictlanx bench --json` against a real VSS: one object per phase with the documented fields.
import { afterAll, expect, test } from "bun:test";
import { cli, programCommand, startTestVss } from "../support/vss.ts";
import { limits } from "../../src/lib/limits.ts";

let vss: Awaited<ReturnType<typeof startTestVss>> | undefined;
afterAll(async () => vss?.cleanup());

test("bench writes then reads and prints one JSON object per phase", async () => {
  vss = await startTestVss({ label: "bench", peers: 3, routers: 1 });
  const run = await cli(["bench", "--router", vss.routers[0]!.address, "--size", "8KiB", "--count", "200", "--concurrency", "8", "--rf", "2", "--json"]);
  expect(run.code).toBe(0);
  const phases = run.stdout.trim().split("\n").map((line) => JSON.parse(line));
  expect(phases.map((phase) => phase.op)).toEqual(["put", "get"]);
  for (const phase of phases) {
    expect(phase).toMatchObject({ size: 8192, count: 200, concurrency: 8, rf: 2, errors: 0 });
    for (const field of ["seconds", "opsPerSec", "mbPerSec", "p50Ms", "p99Ms", "p999Ms", "maxMs"]) expect(phase[field]).toBeGreaterThan(0);
  }
  const usage = await cli(["bench", "--router", vss.routers[0]!.address, "--size", "8KiB"]);
  expect(usage.code).toBe(2);
  // --verify chunks: the reads check each chunk's xxh3 and still compare every byte read with what was written.
  const chunks = await cli(["bench", "--router", vss.routers[0]!.address, "--size", "96KiB", "--chunk-size", "32KiB", "--count", "20", "--verify", "chunks", "--json"]);
  expect(chunks.code).toBe(0);
  expect(chunks.stdout.trim().split("\n").map((line) => JSON.parse(line).errors)).toEqual([0, 0]);
  expect((await cli(["bench", "--router", vss.routers[0]!.address, "--count", "20", "--verify", "sha1"])).code).toBe(2);
});

test("bench deletes the balls it wrote, and their bucket, unless --keep", async () => {
  vss ??= await startTestVss({ label: "bench", peers: 3, routers: 1 });
  const router = vss.routers[0]!.address;
  const buckets = async () => JSON.parse((await cli(["ls", "--json", "--router", router])).stdout) as Array<{ name: string; balls: number; bytes: number; createdMs: number }>;
  const benchBuckets = async () => (await buckets()).filter((bucket) => bucket.name.startsWith("bench-"));
  const before = await benchBuckets();
  const cleaned = await cli(["bench", "--router", router, "--size", "1KiB", "--count", "300", "--op", "put", "--json"]);
  expect(cleaned.code).toBe(0);
  expect(cleaned.stderr).toMatch(/^mictlanx bench: deleted the 300 ball\(s\) it wrote and bucket bench-[0-9a-z]+ \(--keep keeps them\)\n$/);
  expect(await benchBuckets()).toEqual(before);
  const kept = await cli(["bench", "--router", router, "--size", "1KiB", "--count", "120", "--op", "put", "--keep", "--json"]);
  expect(kept.code).toBe(0);
  const name = /kept the balls it wrote in bucket (bench-[0-9a-z]+)/.exec(kept.stderr)?.[1];
  expect(await benchBuckets()).toEqual([...before, { name: name!, balls: 120, bytes: 120 * 1024, createdMs: expect.any(Number) }]);
}, 60_000);

test("bench against a router that is not there stops early and says why (exit 1)", async () => {
  // A port that was free a moment ago: nothing listens on it.
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const address = `127.0.0.1:${listener.port}`;
  listener.stop(true);
  const run = await cli(["bench", "--router", address, "--count", "20000", "--json"]);
  expect(run.code).toBe(1);
  const [put] = run.stdout.trim().split("\n").map((line) => JSON.parse(line));
  // Stopped after benchFailuresBeforeSuccessMax (plus the ones already in flight), not 20,000.
  expect(put).toMatchObject({ op: "put", count: 0 });
  expect(put.errors).toBeGreaterThanOrEqual(limits.benchFailuresBeforeSuccessMax);
  expect(put.errors).toBeLessThan(limits.benchFailuresBeforeSuccessMax + 16);
  expect(put.errorSamples[0]).toContain("stopped after");
  expect(put.errorSamples[1]).toContain(`router ${address} refused the connection`);
}, 60_000);

// A terminal gets a progress line; --json on the same terminal gets the rows alone. `script`
// (util-linux) gives the bench a pseudo-terminal as its stdout and stderr.
const script = Bun.which("script");
test.skipIf(script === null)("bench draws a progress line on a terminal, never with --json", async () => {
  vss ??= await startTestVss({ label: "bench", peers: 3, routers: 1 });
  const router = vss.routers[0]!.address;
  const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;
  const onTty = async (args: string[]) => {
    const line = [...programCommand(), ...args].map(quote).join(" ");
    const proc = Bun.spawn([script!, "-qfec", line, "/dev/null"], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, COLUMNS: "120" } });
    const [stdout, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    return { stdout, code };
  };
  // --duration makes the phase last past a few redraws whatever the box's speed.
  const drawn = await onTty(["bench", "--router", router, "--size", "1KiB", "--duration", "1s", "--concurrency", "4", "--op", "put"]);
  expect(drawn.code).toBe(0);
  expect(drawn.stdout).toMatch(/\rput {3}\[[#.]{24}\] +\d+ %  [\d,]+  [\d,]+ ops\/s  0 errors  \d+\.\d s\u001b\[K/);
  expect(drawn.stdout).toContain("\r\u001b[K"); // cleared before the row
  const json = await onTty(["bench", "--router", router, "--size", "1KiB", "--count", "50", "--op", "put", "--json"]);
  expect(json.code).toBe(0);
  expect(json.stdout).not.toContain("ops/s");
  expect(JSON.parse(json.stdout.split("\n")[0]!.trim())).toMatchObject({ op: "put", count: 50 });
}, 60_000);
