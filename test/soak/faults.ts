// The faults the soak injects into the VSS that `up` runs, one at a time. Each kill is by the
// pid vss.json names; `up` is expected to restart what was killed (a new pid in vss.json), and
// after a fault that touches a peer's data the soak waits for rf to be restored before the next
// one: with rf 2 on 4 peers, one peer unavailable or wiped at a time loses nothing.
import { mkdirSync, renameSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { startRole, type RoleProcess } from "../../src/local/process.ts";
import { logTail } from "../../src/local/supervisor.ts";
import { eventually } from "../support/vss.ts";
import { soakPlan, type FaultKind, type FaultStep } from "./plan.ts";
import { pidOf, signal, slotName, SystemFailure, type Slot, type UpProcess } from "./up.ts";

/** A twin's last word, for the fault's line (its whole log stays in DIR/twins). */
function lastLogLine(path: string): string {
  const line = logTail(path).at(-1) ?? "";
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

export interface FaultRecord {
  step: FaultStep;
  /** Seconds since the soak began. */
  atS: number;
  tookMs: number;
  outcome: string;
  /** A twin the SPM took for the peer (registered at the twin's address): not a check of the
   *  audit (the SPM may take a peer silent past --suspect-after for a replaced disk), but said. */
  twinAccepted: boolean;
}

export class FaultInjector {
  private readonly twins = new Set<RoleProcess>();
  private readonly stopped = new Set<number>();
  private count = 0;
  private twinAccepted = false;

  constructor(
    private readonly up: UpProcess,
    private readonly dir: string,
    private readonly binary: string,
  ) {
    mkdirSync(join(dir, "wiped"), { recursive: true });
    mkdirSync(join(dir, "twins"), { recursive: true });
  }

  async inject(step: FaultStep, atS: number): Promise<FaultRecord> {
    this.count += 1;
    const started = performance.now();
    this.twinAccepted = false;
    const outcome = await this.run(step.kind, step.target);
    return { step, atS, tookMs: Math.round(performance.now() - started), outcome, twinAccepted: this.twinAccepted };
  }

  private run(kind: FaultKind, target: number): Promise<string> {
    switch (kind) {
      case "kill-spm":
        return this.killSpm();
      case "kill-router":
        return this.killRouter(target);
      case "kill-peer":
        return this.killPeer(target);
      case "wipe-peer":
        return this.wipePeer(target);
      case "twin-peer":
        return this.twinPeer(target);
      case "stop-peer":
        return this.stopPeer(target);
    }
  }

  /** The pid vss.json gives the slot now, checked to be this VSS's process. */
  private ownedPid(slot: Slot): number {
    this.up.checkRunning();
    const pid = pidOf(this.up.read(), slot);
    if (!this.up.owns(pid)) throw new SystemFailure(`vss.json names pid ${pid} for ${slotName(slot)}, but no such process of this VSS runs`);
    return pid;
  }

  private kill9(slot: Slot): number {
    const pid = this.ownedPid(slot);
    signal(pid, "SIGKILL");
    return pid;
  }

  private async killSpm(): Promise<string> {
    const pid = this.kill9({ kind: "spm" });
    const fresh = await this.up.waitRestarted({ kind: "spm" }, pid);
    await this.up.waitAllPeersUp("the spm restart");
    return `spm pid ${pid} killed, up restarted it as ${fresh}; all peers back up`;
  }

  private async killRouter(index: number): Promise<string> {
    const slot: Slot = { kind: "router", index };
    const pid = this.kill9(slot);
    const fresh = await this.up.waitRestarted(slot, pid);
    const address = this.up.read().routers[index] ?? "";
    await eventually(`router-${index} answers after its restart`, soakPlan.backWaitMs, async () => (await this.up.router(address).call("router.health", {})).address.length > 0).catch((error) => {
      throw new SystemFailure((error as Error).message);
    });
    return `router-${index} pid ${pid} killed, up restarted it as ${fresh}`;
  }

  private async killPeer(index: number): Promise<string> {
    const slot: Slot = { kind: "peer", index };
    const pid = this.kill9(slot);
    const fresh = await this.up.waitRestarted(slot, pid);
    await this.up.waitHealed(`kill -9 of peer-${index}`, soakPlan.healWaitMs);
    return `peer-${index} pid ${pid} killed, up restarted it as ${fresh} (same data); rf restored`;
  }

  /** Stopped first, so it writes nothing while its directory is moved away; up restarts it empty. */
  private async wipePeer(index: number): Promise<string> {
    const slot: Slot = { kind: "peer", index };
    const file = this.up.read();
    const peer = file.peers[index];
    if (!peer) throw new Error(`no peer-${index} in vss.json`);
    const held = await this.up.peer(peer.address).call("peer.health", {}).then(
      (health) => `${health.chunks} chunks, ${health.liveBytes} live bytes`,
      (error) => `unknown contents (${(error as Error).message})`,
    );
    const pid = this.ownedPid(slot);
    signal(pid, "SIGSTOP");
    const moved = join(this.dir, "wiped", `peer-${index}-${this.count}`);
    renameSync(peer.data, moved);
    signal(pid, "SIGKILL");
    await rm(moved, { recursive: true, force: true });
    const fresh = await this.up.waitRestarted(slot, pid);
    await this.up.waitHealed(`the wipe of peer-${index}`, soakPlan.healWaitMs);
    return `peer-${index} (${held}) wiped: pid ${pid} killed, its data dir removed, up restarted it empty as ${fresh}; rf restored`;
  }

  /** A second process with the same peer id, its own port and data dir, reporting to the SPM. */
  private async twinPeer(index: number): Promise<string> {
    const file = this.up.read();
    const id = `peer-${index}`;
    const data = join(this.dir, "twins", `${id}-${this.count}`);
    const logFile = join(this.dir, "twins", `${id}-${this.count}.log`);
    let twin: RoleProcess;
    try {
      twin = await startRole(`twin of ${id}`, ["peer", "--port", "0", "--data", data, "--id", id, "--spm", file.spm, ...this.up.tlsArgs(id)], logFile, [this.binary]);
    } catch (error) {
      await this.up.waitHealed(`a refused twin of ${id}`, soakPlan.healWaitMs);
      return `twin of ${id} did not start: ${(error as Error).message}; its log: ${lastLogLine(logFile)}`;
    }
    this.twins.add(twin);
    let hijacked = false;
    const watch = (async () => {
      const until = performance.now() + soakPlan.twinLifeMs;
      while (performance.now() < until && twin.proc.exitCode === null) {
        const { peers } = await this.up.spm().call("peers.list", {}).catch(() => ({ peers: [] as Array<{ id: string; address: string }> }));
        if (peers.some((peer) => peer.id === id && peer.address === twin.address)) hijacked = true;
        await Promise.race([Bun.sleep(250), twin.exited]);
      }
    })();
    await watch;
    const exitedByItself = twin.proc.exitCode !== null || twin.proc.signalCode !== null;
    if (!exitedByItself) signal(twin.pid, "SIGKILL");
    await twin.exited;
    this.twins.delete(twin);
    await rm(data, { recursive: true, force: true });
    await this.up.waitHealed(`the twin of ${id}`, soakPlan.healWaitMs);
    const how = exitedByItself ? `exited by itself with code ${twin.proc.exitCode}` : `ran ${soakPlan.twinLifeMs} ms, then was killed`;
    this.twinAccepted = hijacked;
    const seen = hijacked ? `the SPM registered ${id} at the twin's address ${twin.address} meanwhile` : `the SPM never sent ${id}'s traffic to it`;
    const said = lastLogLine(logFile);
    return `twin of ${id} on ${twin.address} ${how}; ${seen}${said ? `; its log: ${said}` : ""}`;
  }

  /** SIGSTOP a peer past the grace period (the SPM marks it down and heals), then SIGCONT it. */
  private async stopPeer(index: number): Promise<string> {
    const slot: Slot = { kind: "peer", index };
    const pid = this.ownedPid(slot);
    const id = `peer-${index}`;
    signal(pid, "SIGSTOP");
    this.stopped.add(pid);
    const stoppedAt = performance.now();
    try {
      await eventually(`the SPM marks the stopped ${id} down`, soakPlan.downAfterMs + soakPlan.backWaitMs, async () => {
        const { peers } = await this.up.spm().call("peers.list", {});
        return peers.find((peer) => peer.id === id)?.state === "down" || `${id} ${peers.find((peer) => peer.id === id)?.state}`;
      });
    } catch (error) {
      throw new SystemFailure((error as Error).message);
    } finally {
      // Held a little past "down" so healing starts, however the wait ended.
      await Bun.sleep(soakPlan.stoppedPastDownMs);
      signal(pid, "SIGCONT");
      this.stopped.delete(pid);
    }
    const heldMs = Math.round(performance.now() - stoppedAt);
    await this.up.waitHealed(`SIGCONT of ${id}`, soakPlan.healWaitMs);
    return `${id} pid ${pid} stopped for ${heldMs} ms (down after ${soakPlan.downAfter}), resumed; rf restored`;
  }

  /** Undo whatever is still in effect (the soak is ending, perhaps on a failure). */
  async release(): Promise<void> {
    for (const pid of this.stopped) signal(pid, "SIGCONT");
    this.stopped.clear();
    for (const twin of this.twins) {
      signal(twin.pid, "SIGKILL");
      await twin.exited;
    }
    this.twins.clear();
  }
}
