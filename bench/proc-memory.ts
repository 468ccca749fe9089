// Resident memory of another process of ours, from /proc (Linux).
import { readFileSync, writeFileSync } from "node:fs";

/** The peak resident set of a process so far (VmHWM), in bytes; 0 once it is gone. */
export function peakRssBytes(pid: number): number {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Start a process's VmHWM again from its current resident set (writing 5 to clear_refs, Linux
 * 4.0 and later), so that a later peakRssBytes is the peak of what ran in between, not of the
 * process's whole life. False when the kernel or the permissions do not allow it.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}
