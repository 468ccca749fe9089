// A real etcd for tests: Debian's /usr/bin/etcd (or the first on PATH), one member on free
// loopback ports, its data in a temp dir. It runs with raft timings 10 times shorter than
// etcd's defaults (heartbeat 50 ms, election 500 ms), which lowers the shortest lease etcd grants
// from 2 s to 1 s, so election tests take seconds. `kill()` and `restart()` (same ports, same
// data) are for the tests of etcd going away; `cleanup()` kills it by its pid (-9) and removes
// the dir. Should the test runner itself be killed, a watchdog shell started beside etcd kills
// it (by its pid) within a second, so no etcd outlives its test.
//
// Where there is no etcd, `etcdUnavailable` says why: test files print it and skip with
// test.skipIf, so the skip shows in the summary.
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Where Debian's etcd-server package puts it; else the first etcd on PATH. */
const debianEtcd = "/usr/bin/etcd";
export const etcdBinary: string | undefined = existsSync(debianEtcd) ? debianEtcd : (Bun.which("etcd") ?? undefined);
export const etcdUnavailable: string | undefined = etcdBinary === undefined ? "etcd is not installed (Debian's package etcd-server; .ci/run installs it)" : undefined;

/** How long etcd has to answer /health after it starts (a cold start takes ~1 s; CI machines are slow). */
const etcdHealthyTimeoutMs = 30_000;
/** Starts on fresh ports when another process took the chosen ones first. */
const etcdStartAttemptsMax = 3;
const healthPollMs = 50;

export interface TestEtcd {
  /** The client endpoint, host:port. */
  endpoint: string;
  /** `etcd://host:port`, as `--coordination` takes it. */
  url: string;
  dir: string;
  pid(): number;
  /** kill -9 and wait until it is gone. */
  kill(): Promise<void>;
  /** Start it again on the same ports with the same data (after kill). */
  restart(): Promise<void>;
  /** Kill it (if running), stop its watchdog, remove its dir (MICTLANX_KEEP keeps it). */
  cleanup(): Promise<void>;
}

export async function startTestEtcd(label: string): Promise<TestEtcd> {
  if (etcdBinary === undefined) throw new Error(etcdUnavailable);
  const dir = mkdtempSync(join(tmpdir(), `mictlanx-etcd-${label}-`));
  try {
    for (let attempt = 1; ; attempt += 1) {
      const ports = { client: await freePort(), peer: await freePort() };
      try {
        return await startOn(etcdBinary, dir, ports);
      } catch (error) {
        if (attempt >= etcdStartAttemptsMax) throw error;
      }
    }
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

async function startOn(binary: string, dir: string, ports: { client: number; peer: number }): Promise<TestEtcd> {
  const endpoint = `127.0.0.1:${ports.client}`;
  let running = await launch(binary, dir, ports);
  const kill = async () => {
    if (running.proc.exitCode === null && running.proc.signalCode === null) process.kill(running.proc.pid, "SIGKILL");
    await running.proc.exited;
    stopWatchdog(running.watchdog);
  };
  return {
    endpoint,
    url: `etcd://${endpoint}`,
    dir,
    pid: () => running.proc.pid,
    kill,
    restart: async () => {
      await kill();
      running = await launch(binary, dir, ports);
    },
    cleanup: async () => {
      await kill();
      if (!process.env.MICTLANX_KEEP) rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Running {
  proc: Bun.Subprocess;
  watchdog: Bun.Subprocess;
}

async function launch(binary: string, dir: string, ports: { client: number; peer: number }): Promise<Running> {
  const clientUrl = `http://127.0.0.1:${ports.client}`;
  const peerUrl = `http://127.0.0.1:${ports.peer}`;
  const logPath = join(dir, "etcd.log");
  const args = [
    binary,
    "--name", "test",
    "--data-dir", join(dir, "data"),
    "--listen-client-urls", clientUrl,
    "--advertise-client-urls", clientUrl,
    "--listen-peer-urls", peerUrl,
    "--initial-advertise-peer-urls", peerUrl,
    "--initial-cluster", `test=${peerUrl}`,
    "--heartbeat-interval", "50",
    "--election-timeout", "500",
  ];
  const logFd = openSync(logPath, "a");
  const proc = Bun.spawn(args, { stdin: "ignore", stdout: logFd, stderr: logFd });
  closeSync(logFd);
  const watchdog = startWatchdog(proc.pid);
  try {
    await waitHealthy(clientUrl, proc, logPath);
  } catch (error) {
    if (proc.exitCode === null) process.kill(proc.pid, "SIGKILL");
    await proc.exited;
    stopWatchdog(watchdog);
    throw error;
  }
  return { proc, watchdog };
}

async function waitHealthy(clientUrl: string, proc: Bun.Subprocess, logPath: string): Promise<void> {
  const deadline = Date.now() + etcdHealthyTimeoutMs;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`etcd exited (${proc.exitCode ?? proc.signalCode}) before it was healthy; its log ends:\n${logTail(logPath)}`);
    try {
      const reply = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1_000) });
      const body = await reply.text();
      if (reply.ok && /"health"\s*:\s*"true"/.test(body)) return;
      last = `HTTP ${reply.status} ${body}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await Bun.sleep(healthPollMs);
  }
  throw new Error(`etcd at ${clientUrl} was not healthy within ${etcdHealthyTimeoutMs} ms (last: ${last}); its log ends:\n${logTail(logPath)}`);
}

function logTail(path: string): string {
  try {
    return readFileSync(path, "utf8").split("\n").slice(-15).join("\n");
  } catch {
    return "(no log)";
  }
}

/** A shell that kills etcd (by pid) once this test process is gone, checking every second. */
function startWatchdog(etcdPid: number): Bun.Subprocess {
  const script = `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${etcdPid} 2>/dev/null; do sleep 1; done; kill -9 ${etcdPid} 2>/dev/null`;
  return Bun.spawn(["/bin/sh", "-c", script], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
}

function stopWatchdog(watchdog: Bun.Subprocess): void {
  if (watchdog.exitCode === null && watchdog.signalCode === null) process.kill(watchdog.pid, "SIGKILL");
}

/** A port the OS says is free right now (another process may take it before etcd does: startTestEtcd retries). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("the OS gave no port"))));
    });
  });
}
