// Starting mictlanx roles as child processes of this same executable: `mictlanx up`, the
// integration tests and bench/ all use this, so what they run is what users run.
import { openSync, closeSync } from "node:fs";
import { MictlanxError, UnavailableError } from "../lib/errors.ts";

export interface RoleProcess {
  name: string;
  pid: number;
  address: string;
  /** Where its Prometheus metrics are served, when it serves them. */
  metricsUrl?: string;
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
  const proc = Bun.spawn([...command, ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: logFd ?? "inherit",
    // The role stops by itself if this process goes away, even by kill -9 (see signals.ts).
    env: { ...process.env, MICTLANX_PARENT_PID: String(process.pid) },
  });
  if (logFd !== undefined) closeSync(logFd);
  const exited = proc.exited;
  const ready = await readReadyLine(name, proc, exited, logFile);
  const metricsUrl = /metrics on (http:\/\/\S+?)\)?$/m.exec(ready)?.[1];
  const address = /listening on (\S+)/.exec(ready)?.[1] ?? "";
  return { name, pid: proc.pid, address, ...(metricsUrl ? { metricsUrl } : {}), args, proc, exited };
}

async function readReadyLine(name: string, proc: Bun.Subprocess<"ignore", "pipe", "inherit" | number>, exited: Promise<number>, logFile?: string): Promise<string> {
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
    if ("code" in next) throw new UnavailableError(`${name} exited with code ${next.code} while starting${logFile ? `; see ${logFile}` : ""}`);
    if (next.done) throw new UnavailableError(`${name} closed its output before it was ready${logFile ? `; see ${logFile}` : ""}`);
    text += decoder.decode(next.value, { stream: true });
    const line = /^.*listening on \S+.*$/m.exec(text);
    if (line && text.slice(line.index + line[0].length).startsWith("\n")) {
      drain(reader);
      return line[0];
    }
  }
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
