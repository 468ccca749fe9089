// Starting mictlanx roles as child processes of this same executable: `mictlanx up`, the
// integration tests and bench/ all use this, so what they run is what users run.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { MictlanxError, UnavailableError, UsageError, exitCodes } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";

export interface RoleProcess {
  name: string;
  pid: number;
  address: string;
  /** Where its Prometheus metrics are served, when it serves them. */
  metricsUrl?: string;
  /** A router's S3 endpoint, when it serves one. */
  s3Url?: string;
  /** The line it printed when it was ready (an insecure role says so there). */
  readyLine: string;
  args: string[];
  proc: Bun.Subprocess;
  exited: Promise<number>;
}

export const roleStartTimeoutMs = 20_000;

/** The command that runs this program again: the compiled binary, or bun + the entry file. */
export function selfCommand(): string[] {
  const fromEnv = process.env.MICTLANX_BIN;
  if (fromEnv) return [fromEnv];
  if (Bun.isStandaloneExecutable) return [process.execPath];
  return [process.execPath, Bun.main];
}

/**
 * Start `mictlanx <args…>` and wait for its ready line ("… listening on host:port").
 * Its stderr goes to `logFile` when given (else inherited); stdout after the ready line too.
 */
export async function startRole(name: string, args: string[], logFile?: string, command = selfCommand()): Promise<RoleProcess> {
  const logFd = logFile ? openSync(logFile, "a") : undefined;
  const logStart = logFd === undefined ? 0 : fstatSync(logFd).size;
  const proc = Bun.spawn([...command, ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: logFd ?? "inherit",
    // The role stops by itself if this process goes away, even by kill -9 (see signals.ts).
    env: { ...process.env, MICTLANX_PARENT_PID: String(process.pid) },
  });
  if (logFd !== undefined) closeSync(logFd);
  const exited = proc.exited;
  const ready = await readReadyLine(name, proc, exited, logFile === undefined ? undefined : { path: logFile, start: logStart });
  const metricsUrl = /metrics on (http:\/\/\S+?)\)?$/m.exec(ready)?.[1];
  const s3Url = /\(s3 on (https?:\/\/[^\s)]+)\)/.exec(ready)?.[1];
  const address = /listening on (\S+)/.exec(ready)?.[1] ?? "";
  return { name, pid: proc.pid, address, ...(metricsUrl ? { metricsUrl } : {}), ...(s3Url ? { s3Url } : {}), readyLine: ready.trim(), args, proc, exited };
}

/** A child's log, and where in it this start's lines begin (it is appended to across restarts). */
interface LogSpan {
  path: string;
  start: number;
}

async function readReadyLine(name: string, proc: Bun.Subprocess<"ignore", "pipe", "inherit" | number>, exited: Promise<number>, log?: LogSpan): Promise<string> {
  const logFile = log?.path;
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + roleStartTimeoutMs;
  const timeout = Bun.sleep(roleStartTimeoutMs).then(() => "timeout" as const);
  const died = exited.then((code) => ({ code }));
  for (;;) {
    const next = await Promise.race([reader.read(), timeout, died]);
    if (next === "timeout" || Date.now() > deadline) {
      proc.kill(9);
      throw new MictlanxError("timeout", `${name} did not start within ${roleStartTimeoutMs} ms${logFile ? `; see ${logFile}` : ""}`);
    }
    if ("code" in next || next.done) throw await startFailure(name, exited, log);
    text += decoder.decode(next.value, { stream: true });
    const line = /^.*listening on \S+.*$/m.exec(text);
    if (line && text.slice(line.index + line[0].length).startsWith("\n")) {
      drain(reader);
      return line[0];
    }
  }
}

/**
 * A child that ended before its ready line, as the error it printed: its own "mictlanx: …" line
 * (a taken port, an unusable --data) carries its code's meaning, so `up` says that instead of
 * "closed its output before it was ready". Without a log the child's stderr was this process's.
 */
async function startFailure(name: string, exited: Promise<number>, log: LogSpan | undefined): Promise<MictlanxError> {
  const code = await Promise.race([exited, Bun.sleep(limits.roleExitWaitMs).then(() => undefined)]);
  const how = code === undefined ? "closed its output" : `exited with code ${code}`;
  if (!log) return new UnavailableError(`${name} ${how} before it was ready (its error is above)`);
  const said = lastErrorLine(log);
  const usage = code === exitCodes.usage;
  if (said === undefined) return new UnavailableError(`${name} ${how} before it was ready; see ${log.path}`);
  const message = `${name} could not start: ${said} (log: ${log.path})`;
  return usage ? new UsageError(message) : new UnavailableError(message);
}

/** The last "mictlanx: …" line the child wrote to its log since `start` (read from at most upLogTailBytesMax). */
function lastErrorLine(log: LogSpan): string | undefined {
  let text: string;
  try {
    const fd = openSync(log.path, "r");
    try {
      const size = fstatSync(fd).size;
      const from = Math.max(log.start, size - limits.upLogTailBytesMax);
      const buffer = Buffer.alloc(Math.max(0, size - from));
      const read = readSync(fd, buffer, 0, buffer.length, from);
      text = buffer.subarray(0, read).toString("utf8");
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
  const lines = text.split("\n").filter((line) => line.startsWith("mictlanx: "));
  return lines.at(-1)?.slice("mictlanx: ".length);
}

/** Keep reading the child's stdout so it never blocks on a full pipe. */
function drain(reader: { read(): Promise<{ done: boolean }> }): void {
  void (async () => {
    try {
      for (;;) if ((await reader.read()).done) return;
    } catch {
      // the child is gone; nothing left to read
    }
  })();
}

/** SIGTERM, then SIGKILL after `graceMs` if it has not exited. */
export async function stopRole(role: RoleProcess, graceMs = 5_000): Promise<void> {
  if (role.proc.exitCode !== null || role.proc.signalCode !== null) return;
  role.proc.kill("SIGTERM");
  const done = await Promise.race([role.exited.then(() => true), Bun.sleep(graceMs).then(() => false)]);
  if (!done) {
    role.proc.kill("SIGKILL");
    await role.exited;
  }
}
