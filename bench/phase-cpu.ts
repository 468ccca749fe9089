// What a phase of `mictlanx bench --json` cost each process: the bench prints one JSON line per
// phase as the phase ends, and each process's CPU is read the moment that line arrives (before
// it is parsed, so parsing never falls between the phase's end and the reading).
import { readFileSync } from "node:fs";

/** CPU seconds (user + system, all threads) in the text of /proc/PID/stat, at USER_HZ 100. */
export function cpuSecondsOfStat(stat: string): number {
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds a process has used so far; NaN once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    return cpuSecondsOfStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU seconds of a process and all its descendants alive now (PostgreSQL: the postmaster and
 * its backends, which a process's own counters leave out until they exit and are reaped).
 */
export function treeCpuSeconds(pid: number): number {
  let total = 0;
  const pending = [pid];
  for (let seen = 0; pending.length > 0 && seen < processTreeMax; seen += 1) {
    const next = pending.pop()!;
    const own = cpuSeconds(next);
    if (Number.isNaN(own)) continue;
    total += own;
    try {
      for (const child of readFileSync(`/proc/${next}/task/${next}/children`, "utf8").trim().split(" ")) if (child !== "") pending.push(Number(child));
    } catch {
      // gone meanwhile: its CPU was counted, it has no children to list
    }
  }
  return total;
}

/** A bound on the processes treeCpuSeconds visits (a PostgreSQL has a few dozen). */
const processTreeMax = 1000;

/**
 * Each non-empty line of `stdout` with the CPU seconds each of `pids` spent since the line
 * before (or since the call, for the first).
 */
export function linesWithCpu(stdout: ReadableStream<Uint8Array>, pids: Record<string, number>): AsyncGenerator<{ line: string; cpuSeconds: Record<string, number> }> {
  return linesWithCpuOf(stdout, Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, () => cpuSeconds(pid)])));
}

/** As linesWithCpu, with each name's CPU seconds so far read by its own function (a sum of processes, a tree). */
export async function* linesWithCpuOf(stdout: ReadableStream<Uint8Array>, readers: Record<string, () => number>): AsyncGenerator<{ line: string; cpuSeconds: Record<string, number> }> {
  const snapshot = () => Object.fromEntries(Object.entries(readers).map(([name, read]) => [name, read()]));
  let last = snapshot();
  const decoder = new TextDecoder();
  let pending = "";
  for await (const piece of stdout) {
    pending += decoder.decode(piece, { stream: true });
    for (let newline = pending.indexOf("\n"); newline >= 0; newline = pending.indexOf("\n")) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line === "") continue;
      const now = snapshot();
      yield { line, cpuSeconds: Object.fromEntries(Object.keys(readers).map((name) => [name, (now[name] ?? 0) - (last[name] ?? 0)])) };
      last = now;
    }
  }
}
