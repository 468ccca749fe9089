// Pipes both ways in constant memory: 1 GiB generated on the fly into `mictlanx put b/k -`, then
// `mictlanx get b/k -o -` hashed as it streams out. The CLI process's peak RSS (VmHWM, polled
// every 100 ms) must stay ≤ 256 MiB each way, and the sha256 must match. The test itself holds
// one 1 MiB block at a time.
import { afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { seededRandom } from "../support/random.ts";
import { programCommand, startTestVss } from "../support/vss.ts";

const { seed } = seededRandom("client-cli-stream");
const MiB = 1024 * 1024;
const totalBytes = Number(process.env.MICTLANX_STREAM_BYTES ?? 1024 * MiB);
const rssMaxBytes = 256 * MiB;
let vss: Awaited<ReturnType<typeof startTestVss>> | undefined;
afterAll(async () => vss?.cleanup());

/** Seeded bytes, fast: xorshift32 over a Uint32Array, one block at a time. */
function blockGenerator(seedValue: number) {
  let state = seedValue >>> 0 || 1;
  return (bytes: number): Uint8Array => {
    const words = new Uint32Array(Math.ceil(bytes / 4));
    for (let i = 0; i < words.length; i += 1) {
      state ^= state << 13;
      state >>>= 0;
      state ^= state >>> 17;
      state ^= state << 5;
      state >>>= 0;
      words[i] = state;
    }
    return new Uint8Array(words.buffer, 0, bytes);
  };
}

/** The peak resident set of a running process, polled until it exits. */
function watchPeakRss(pid: number): { stop(): number } {
  let peak = 0;
  const read = () => {
    try {
      const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (match) peak = Math.max(peak, Number(match[1]) * 1024);
    } catch {
      // exited between polls; the last reading stands
    }
  };
  read();
  const timer = setInterval(read, 100);
  return {
    stop: () => {
      clearInterval(timer);
      return peak;
    },
  };
}

test(`1 GiB through put - and get -o -: constant memory, equal sha256 (seed ${seed})`, async () => {
  vss = await startTestVss({ label: "cli-stream", peers: 3, routers: 1 });
  const env = { ...process.env, MICTLANX_ROUTERS: vss.routers[0]!.address };

  // put: stdin fed block by block while hashing.
  const putStarted = performance.now();
  const put = Bun.spawn([...programCommand(), "put", "stream/big.bin", "-", "--rf", "1", "--json"], { stdin: "pipe", stdout: "pipe", stderr: "pipe", env });
  const putRss = watchPeakRss(put.pid);
  const sent = new Bun.CryptoHasher("sha256");
  const next = blockGenerator(seed);
  for (let at = 0; at < totalBytes; at += MiB) {
    const block = next(Math.min(MiB, totalBytes - at));
    sent.update(block);
    put.stdin.write(block);
    await put.stdin.flush();
  }
  await put.stdin.end();
  const [putOut, putErr, putCode] = await Promise.all([new Response(put.stdout).text(), new Response(put.stderr).text(), put.exited]);
  const putSeconds = (performance.now() - putStarted) / 1000;
  const putPeak = putRss.stop();
  expect(putErr).toBe("");
  expect(putCode).toBe(0);
  const sentHex = sent.digest("hex");
  expect(JSON.parse(putOut)).toMatchObject({ bucket: "stream", key: "big.bin", size: totalBytes, checksum: sentHex, numChunks: Math.ceil(totalBytes / MiB) });

  // get: stdout hashed as it arrives.
  const getStarted = performance.now();
  const get = Bun.spawn([...programCommand(), "get", "stream/big.bin", "-o", "-"], { stdout: "pipe", stderr: "pipe", env });
  const getRss = watchPeakRss(get.pid);
  const received = new Bun.CryptoHasher("sha256");
  let receivedBytes = 0;
  for await (const piece of get.stdout) {
    received.update(piece);
    receivedBytes += piece.byteLength;
  }
  const [getErr, getCode] = await Promise.all([new Response(get.stderr).text(), get.exited]);
  const getSeconds = (performance.now() - getStarted) / 1000;
  const getPeak = getRss.stop();
  expect(getErr).toBe("");
  expect(getCode).toBe(0);
  expect(receivedBytes).toBe(totalBytes);
  expect(received.digest("hex")).toBe(sentHex);

  console.log(
    `[client-cli-stream] ${totalBytes / MiB} MiB: put ${putSeconds.toFixed(1)} s, peak RSS ${(putPeak / MiB).toFixed(0)} MiB; ` +
      `get ${getSeconds.toFixed(1)} s, peak RSS ${(getPeak / MiB).toFixed(0)} MiB`,
  );
  expect(putPeak).toBeGreaterThan(0);
  expect(putPeak).toBeLessThanOrEqual(rssMaxBytes);
  expect(getPeak).toBeGreaterThan(0);
  expect(getPeak).toBeLessThanOrEqual(rssMaxBytes);
}, 120_000);
