// A reader that goes away (`| head -c 100`, `| true`, a program that stops reading): every
// command stops promptly, quietly (no stack trace) and with exit 0, and lets go of its router
// connections — for a get of every size, and for ls, stat, status --json and get --ball-id.
// The pipelines are real: `sh` pipes into `head`, and a Bun reader that cancels after 100 bytes
// (Bun's "pipe" is a socket, where the reader's departure shows as ECONNRESET, not EPIPE).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { randomBytes, seededRandom } from "../support/random.ts";
import { clientFor, programCommand, startTestVss, tempDir } from "../support/vss.ts";
import { limits } from "../../src/lib/limits.ts";

const { random, seed } = seededRandom("client-cli-pipes");
// Real processes on a shared 2-core machine: far more than the runner\'s 5 s default.
setDefaultTimeout(120_000);
const KiB = 1024;
const MiB = 1024 * KiB;
/** A command whose reader has gone must be over well within this (it hung for good before). */
const promptMs = 15_000;
const dir = tempDir("client-cli-pipes");
let vss: Awaited<ReturnType<typeof startTestVss>>;
let env: Record<string, string>;
const balls = new Map<string, Uint8Array>();

beforeAll(async () => {
  vss = await startTestVss({ label: "client-cli-pipes", peers: 2, routers: 1 });
  env = { MICTLANX_ROUTERS: vss.routers[0]!.address, MICTLANX_SPM: vss.spm.address };
  const client = clientFor(vss);
  try {
    for (const [key, size] of [["empty", 0], ["one-chunk", 1 * MiB], ["8mib", 8 * MiB], ["20mib", 20 * MiB]] as const) {
      const data = randomBytes(random, size);
      await client.put("pipes", key, data, { rf: 1 });
      balls.set(key, data);
    }
    // A group of many small balls: written four at a time, far more than fit before a reader stops.
    for (let index = 0; index < 40; index += 1) {
      const data = randomBytes(random, 64 * KiB + index);
      const key = `group/${String(index).padStart(2, "0")}.bin`;
      await client.put("pipes", key, data, { rf: 1, ballId: "g" });
      balls.set(key, data);
    }
  } finally {
    client.close();
  }
});
afterAll(async () => {
  await vss?.cleanup();
  if (!process.env.MICTLANX_KEEP) rmSync(dir, { recursive: true, force: true });
});

interface PipeRun {
  code: number;
  stderr: string;
  readerOut: string;
  ms: number;
}

let runs = 0;

/**
 * `mictlanx ARGS | READER` through sh, as a shell runs it. With `closeFirst`, the reader closes
 * its end before mictlanx starts (a fifo hands over the turn), so the very first write meets a
 * pipe nobody reads. mictlanx's pid and exit code are written to files; a run that is not over
 * within `promptMs` is killed by that pid and fails.
 */
async function throughPipe(args: string[], reader: string, options: { closeFirst?: boolean } = {}): Promise<PipeRun> {
  runs += 1;
  const files = { pid: join(dir, `pid-${runs}`), status: join(dir, `status-${runs}`), err: join(dir, `err-${runs}`), go: join(dir, `go-${runs}`) };
  const wait = options.closeFirst ? `read go < "$GO"; ` : "";
  const readerPart = options.closeFirst ? `{ exec 0<&-; echo go > "$GO"; }` : reader;
  const script = `${options.closeFirst ? 'mkfifo "$GO"; ' : ""}{ ${wait}"$@" 2> "$ERR" & echo $! > "$PID"; wait $!; echo $? > "$STATUS"; } | ${readerPart}`;
  const started = performance.now();
  const shell = Bun.spawn(["sh", "-c", script, "sh", ...programCommand(), ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "inherit",
    env: { ...process.env, ...env, PID: files.pid, STATUS: files.status, ERR: files.err, GO: files.go },
  });
  const readerOut = new Response(shell.stdout).text();
  const finished = await Promise.race([shell.exited.then(() => true), Bun.sleep(promptMs).then(() => false)]);
  const ms = performance.now() - started;
  if (!finished) {
    const pid = Number(readFileSync(files.pid, "utf8"));
    if (pid > 1) process.kill(pid, "SIGKILL");
    process.kill(shell.pid, "SIGKILL");
    throw new Error(`mictlanx ${args.join(" ")} | ${reader} was still running after ${promptMs} ms`);
  }
  return { code: Number(readFileSync(files.status, "utf8")), stderr: readFileSync(files.err, "utf8"), readerOut: await readerOut, ms };
}

describe(`get -o - into a reader that stops (seed ${seed})`, () => {
  for (const key of ["empty", "one-chunk", "8mib", "20mib"]) {
    test(`${key}: | head -c 100 ends at once with exit 0, nothing on stderr`, async () => {
      const size = balls.get(key)!.byteLength;
      const run = await throughPipe(["get", `pipes/${key}`, "-o", "-"], "head -c 100 | wc -c");
      expect(run.stderr).toBe("");
      expect(run.code).toBe(0);
      expect(Number(run.readerOut.trim())).toBe(Math.min(100, size));
      console.log(`[pipes] get ${key} (${size} B) | head -c 100: over in ${run.ms.toFixed(0)} ms`);
    });
  }

  test("20mib and 8mib: | true (the reader never reads) ends with exit 0", async () => {
    for (const key of ["8mib", "20mib"]) {
      const run = await throughPipe(["get", `pipes/${key}`, "-o", "-"], "true");
      expect(run.stderr).toBe("");
      expect(run.code).toBe(0);
    }
  });

  test("a Bun reader that cancels after 100 bytes (a socket: ECONNRESET): exit 0, nothing on stderr", async () => {
    for (const key of ["one-chunk", "8mib", "20mib"]) {
      const proc = Bun.spawn([...programCommand(), "get", `pipes/${key}`, "-o", "-"], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
      const stderr = new Response(proc.stderr).text();
      const reader = proc.stdout.getReader();
      let got = 0;
      while (got < 100) {
        const step = await reader.read();
        if (step.done) break;
        got += step.value.byteLength;
      }
      await reader.cancel();
      const code = await Promise.race([proc.exited, Bun.sleep(promptMs).then(() => "still running")]);
      if (code === "still running") process.kill(proc.pid, "SIGKILL");
      expect(got).toBeGreaterThanOrEqual(100);
      expect(code).toBe(0);
      expect(await stderr).toBe("");
    }
  });
});

describe("other commands whose reader is gone before they write", () => {
  test("ls, ls --json, stat, stat --json, status --json: exit 0, no stack trace", async () => {
    for (const args of [["ls", "pipes"], ["ls", "pipes", "--json"], ["ls"], ["stat", "pipes/8mib"], ["stat", "pipes/8mib", "--json"], ["status", "--json"], ["status"]]) {
      const run = await throughPipe(args, "", { closeFirst: true });
      expect({ args, stderr: run.stderr, code: run.code }).toEqual({ args, stderr: "", code: 0 });
    }
  });

  test("get --ball-id: stops writing, removes its partial files, exit 0; what it wrote is whole", async () => {
    const out = join(dir, "group-out");
    const run = await throughPipe(["get", "pipes", "--ball-id", "g", "-o", out], "", { closeFirst: true });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const written = existsSync(join(out, "group")) ? readdirSync(join(out, "group")) : [];
    expect(written.filter((name) => name.includes(".mictlanx-partial-"))).toEqual([]);
    for (const name of written) expect(Buffer.compare(readFileSync(join(out, "group", name)), Buffer.from(balls.get(`group/${name}`)!))).toBe(0);
    // It stopped: not the whole group of 40 (four at a time; it stops at the first line it cannot print).
    expect(written.length).toBeLessThan(40);
    console.log(`[pipes] get --ball-id with its reader gone: ${written.length} of 40 written, over in ${run.ms.toFixed(0)} ms (stop bound ${limits.outputClosedStopMsMax} ms)`);
  });

  test("a closed stderr only silences: the command carries on and keeps its exit code", async () => {
    // stderr (not stdout) into the pipe nobody reads: `get` of a missing ball still exits 4.
    runs += 1;
    const status = join(dir, `status-${runs}`);
    const shell = Bun.spawn(["sh", "-c", `{ "$@" 2>&1 >/dev/null; echo $? > "$STATUS"; } | true`, "sh", ...programCommand(), "get", "pipes/missing", "-o", "-"], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, ...env, STATUS: status },
    });
    const finished = await Promise.race([shell.exited.then(() => true), Bun.sleep(promptMs).then(() => false)]);
    if (!finished) process.kill(shell.pid, "SIGKILL");
    expect(finished).toBe(true);
    expect(Number(readFileSync(status, "utf8"))).toBe(4);
    expect(await new Response(shell.stderr).text()).toBe("");
  });
});
