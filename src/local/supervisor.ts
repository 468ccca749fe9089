// `mictlanx up` keeps its children alive. A role that exits while `up` is not stopping is
// started again on the same port with the same arguments (a peer keeps its --id and --data,
// so it comes back with what its disk holds), after a backoff that doubles with each death
// inside a window, and DIR/vss.json is rewritten with the new pid. A role that dies
// `upRestartDeathsMax` times within `upRestartWindowMs` (failed starts count) will not come back
// by retrying — a taken port, a broken data dir — so the supervisor gives up on it and says
// why, with the last lines of its log; `up` then stops the whole VSS and exits 1.
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { assert } from "../lib/assert.ts";
import { limits } from "../lib/limits.ts";
import type { RoleProcess } from "./process.ts";
import type { LocalVss } from "./vss.ts";

/** Where a role sits in the VSS: what `restart` starts again. */
export type RoleSlot = { kind: "spm"; index: number } | { kind: "router"; index: number } | { kind: "peer"; index: number };

export interface SupervisorOptions {
  /** false (`up --no-restart`): a dead child is only reported. */
  restart: boolean;
  /** One line for a person (stderr in `up`). */
  say: (line: string) => void;
}

export interface GiveUp {
  name: string;
  deaths: number;
  /** How the child ended the last time (an exit code, a signal, or why it did not start). */
  lastExit: string;
  logFile: string | undefined;
  logTail: string[];
}

export interface Supervisor {
  /** Resolves when a child kept dying and is no longer restarted. */
  readonly gaveUp: Promise<GiveUp>;
  /** Restarts done so far (each one a child started again). */
  readonly restarts: () => number;
  /** No restart begins after this; one under way is awaited, so `vss.stop()` then stops everything. */
  stop(): Promise<void>;
}

export function superviseVss(vss: LocalVss, options: SupervisorOptions): Supervisor {
  let stopping = false;
  let restarts = 0;
  const underWay = new Set<Promise<void>>();
  const wakeSleepers = new Set<() => void>();
  let giveUp: (why: GiveUp) => void = () => {};
  const gaveUp = new Promise<GiveUp>((resolve) => (giveUp = resolve));

  /** Sleep `ms`, or less if the supervisor stops; true when it is still running afterwards. */
  const sleepUnlessStopping = async (ms: number): Promise<boolean> => {
    let wake: () => void = () => {};
    const woken = new Promise<void>((resolve) => (wake = resolve));
    wakeSleepers.add(wake);
    await Promise.race([Bun.sleep(ms), woken]);
    wakeSleepers.delete(wake);
    return !stopping;
  };

  const watch = (slot: RoleSlot, role: RoleProcess, deaths: number[]) => {
    void role.exited.then(() => {
      if (stopping) return;
      const task = onDeath(slot, role, deaths).finally(() => underWay.delete(task));
      underWay.add(task);
    });
  };

  const onDeath = async (slot: RoleSlot, role: RoleProcess, deaths: number[]): Promise<void> => {
    const logFile = vss.logFile(role.name);
    const seeLog = logFile ? `; see ${logFile}` : "";
    let lastExit = describeExit(role);
    if (!options.restart) {
      options.say(`warning: ${role.name} (pid ${role.pid}) ${lastExit}${seeLog}; not restarting it (--no-restart)`);
      return;
    }
    for (;;) {
      const now = performance.now();
      deaths.push(now);
      while (deaths.length > 0 && now - (deaths[0] as number) > limits.upRestartWindowMs) deaths.shift();
      if (deaths.length >= limits.upRestartDeathsMax) {
        giveUp({ name: role.name, deaths: deaths.length, lastExit, logFile, logTail: logFile ? logTail(logFile) : [] });
        return;
      }
      const delayMs = restartBackoffMs(deaths.length);
      options.say(
        `${role.name} (pid ${role.pid}) ${lastExit}; restarting it in ${delayMs} ms ` +
          `(death ${deaths.length} of ${limits.upRestartDeathsMax} allowed within ${limits.upRestartWindowMs / 1000} s)${seeLog}`,
      );
      if (!(await sleepUnlessStopping(delayMs))) return;
      try {
        const fresh = await restartSlot(vss, slot);
        restarts += 1;
        options.say(`${fresh.name} restarted as pid ${fresh.pid} on ${fresh.address} (vss.json updated)`);
        if (!stopping) watch(slot, fresh, deaths);
        return;
      } catch (error) {
        lastExit = `failed to start again: ${(error as Error).message}`;
        if (stopping) return;
      }
    }
  };

  vss.spms.forEach((spm, index) => watch({ kind: "spm", index }, spm, []));
  vss.routers.forEach((router, index) => watch({ kind: "router", index }, router, []));
  vss.peers.forEach((peer, index) => watch({ kind: "peer", index }, peer, []));

  return {
    gaveUp,
    restarts: () => restarts,
    stop: async () => {
      stopping = true;
      for (const wake of wakeSleepers) wake();
      await Promise.allSettled([...underWay]);
    },
  };
}

/** The backoff before the restart that follows the `deaths`-th death in the window (1-based). */
export function restartBackoffMs(deaths: number): number {
  assert(Number.isInteger(deaths) && deaths >= 1, `deaths counts from 1, got ${deaths}`);
  return Math.min(limits.upRestartBackoffMsBase * 2 ** (deaths - 1), limits.upRestartBackoffMsMax);
}

function restartSlot(vss: LocalVss, slot: RoleSlot): Promise<RoleProcess> {
  switch (slot.kind) {
    case "spm":
      return vss.startSpm(slot.index);
    case "router":
      return vss.startRouter(slot.index);
    case "peer":
      return vss.startPeer(slot.index);
  }
}

function describeExit(role: RoleProcess): string {
  const signal = role.proc.signalCode;
  return signal ? `was killed by ${signal}` : `exited with code ${role.proc.exitCode ?? "?"}`;
}

/** The last `upLogTailLines` lines of a log, reading at most `upLogTailBytesMax` from its end. */
export function logTail(path: string): string[] {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    return [`(cannot read ${path}: ${(error as Error).message})`];
  }
  try {
    const size = statSync(path).size;
    const length = Math.min(size, limits.upLogTailBytesMax);
    const buffer = Buffer.alloc(length);
    const read = readSync(fd, buffer, 0, length, size - length);
    const lines = buffer.subarray(0, read).toString("utf8").split("\n");
    if (length < size) lines.shift(); // the first line read is probably cut
    while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
    return lines.slice(-limits.upLogTailLines);
  } finally {
    closeSync(fd);
  }
}
