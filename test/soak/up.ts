// The soak's handle on `dist/mictlanx up`: started as users start it, read through vss.json
// (re-read whenever a pid matters, since `up` rewrites it when it restarts a child), asked about
// through the SPM, stopped and cleaned up by pid.
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { readVssFile, type VssFile } from "../../src/local/vss.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { peerOps } from "../../src/protocol/peer.ts";
import { routerOps } from "../../src/protocol/router.ts";
import { spmOps, type VssStatus } from "../../src/protocol/spm.ts";
import { alive, eventually } from "../support/vss.ts";
import { clientSecurity, findCredentials } from "../../src/client/credentials.ts";
import { issueNodeCertificate, nodeFiles } from "../../src/certs/certs.ts";
import { TlsSource } from "../../src/net/tls.ts";
import { soakPlan } from "./plan.ts";

/** A failure of the system under test (as opposed to a bug of the soak). */
export class SystemFailure extends Error {
  override name = "SystemFailure";
}

export type Slot = { kind: "spm" } | { kind: "router"; index: number } | { kind: "peer"; index: number };

export function slotName(slot: Slot): string {
  return slot.kind === "spm" ? "spm" : `${slot.kind}-${slot.index}`;
}

export function pidOf(file: VssFile, slot: Slot): number {
  const pid = slot.kind === "spm" ? file.spmPid : slot.kind === "router" ? file.routerPids[slot.index] : file.peers[slot.index]?.pid;
  if (pid === undefined) throw new Error(`vss.json has no ${slotName(slot)}`);
  return pid;
}

/**
 * True when `pid` runs this VSS's binary for this VSS (its data dir or its SPM on the command
 * line): a pid from vss.json that died may since have been given to someone else's process.
 */
export function ours(pid: number, binary: string, marks: string[]): boolean {
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return false;
  }
  return cmdline.includes(binary) && marks.some((mark) => cmdline.includes(mark));
}

/** kill by pid, and only if it is still there. */
export function signal(pid: number, name: "SIGKILL" | "SIGSTOP" | "SIGCONT" | "SIGTERM"): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

export class UpProcess {
  /** To the SPM and the routers, with up's admin key; to the peers, as an SPM-role node of up's CA (set once up is up). */
  private clientPool = new RpcPool({ role: "spm" });
  private nodePool = new RpcPool({ role: "peer" });
  private stderrLines: string[] = [];
  /** Every pid vss.json ever named, so the end can make sure none is left. */
  private readonly seenPids = new Set<number>();
  private spmAddress = "";

  private constructor(
    readonly vssDir: string,
    readonly binary: string,
    readonly proc: Bun.Subprocess<"ignore", "pipe", "pipe">,
    private readonly logFd: number,
  ) {}

  static async start(binary: string, dir: string, say: (line: string) => void): Promise<UpProcess> {
    const vssDir = join(dir, "vss");
    const args = ["up", "--port", "0", "--peers", String(soakPlan.peers), "--routers", String(soakPlan.routers), "--data", vssDir, "--suspect-after", soakPlan.suspectAfter, "--down-after", soakPlan.downAfter];
    say(`starting: ${binary} ${args.join(" ")}`);
    // up stops its VSS by itself if the soak dies, even by kill -9 (see src/commands/signals.ts).
    // Its children must run this binary (the soak tells its processes by it): no MICTLANX_BIN.
    const { MICTLANX_BIN: _other, ...inherited } = process.env;
    const env = { ...inherited, MICTLANX_PARENT_PID: String(process.pid) };
    const proc = Bun.spawn([binary, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env });
    const up = new UpProcess(vssDir, binary, proc, openSync(join(dir, "up.log"), "a"));
    let banner = "";
    void up.follow(proc.stdout, (line) => (banner += `${line}\n`));
    void up.follow(proc.stderr, (line) => {
      up.stderrLines.push(line);
      if (up.stderrLines.length > 200) up.stderrLines.shift();
      if (line.startsWith("mictlanx up:")) say(line);
    });
    const exited = proc.exited.then((code) => {
      throw new SystemFailure(`up exited with code ${code} before the VSS was up:\n${up.stderrTail()}`);
    });
    exited.catch(() => {});
    await Promise.race([eventually("up says the VSS is up", soakPlan.backWaitMs, () => banner.includes("VSS is up") || banner), exited]);
    up.read();
    await up.secure();
    return up;
  }

  /** The VSS runs with TLS and keys, as users' do: ask it with up's admin key, and the peers with a certificate of up's CA. */
  private async secure(): Promise<void> {
    const credentialsPath = join(this.vssDir, "credentials.json");
    process.env.MICTLANX_CREDENTIALS = credentialsPath; // the workers (spawned after this) find it
    const credentials = findCredentials({ credentials: credentialsPath });
    const security = clientSecurity(credentials);
    if (!security) throw new SystemFailure(`up wrote no credentials in ${credentialsPath}`);
    const certsDir = join(this.vssDir, "certs");
    await issueNodeCertificate({ dir: certsDir, role: "spm", id: "soak-auditor", hosts: ["127.0.0.1"] });
    this.clientPool.close();
    this.nodePool.close();
    this.clientPool = new RpcPool({ role: "spm", security });
    this.nodePool = new RpcPool({ role: "peer", identity: { role: "spm", id: "soak-auditor" }, security: { tls: new TlsSource(nodeFiles(certsDir, "soak-auditor")) } });
  }

  /** A peer's --tls-* flags, from up's certificates (a twin copies its original's). */
  tlsArgs(id: string): string[] {
    const files = nodeFiles(join(this.vssDir, "certs"), id);
    return ["--tls-cert", files.certPath, "--tls-key", files.keyPath, "--tls-ca", files.caPath];
  }

  private async follow(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const piece of stream) {
      const text = decoder.decode(piece, { stream: true });
      writeSync(this.logFd, text);
      rest += text;
      const lines = rest.split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) onLine(line);
    }
  }

  stderrTail(lines = 20): string {
    return this.stderrLines.slice(-lines).map((line) => `  | ${line}`).join("\n");
  }

  /** vss.json as `up` wrote it last. */
  read(): VssFile {
    const file = readVssFile(this.vssDir);
    this.spmAddress = file.spm;
    for (const pid of [file.spmPid, ...file.routerPids, ...file.peers.map((peer) => peer.pid)]) this.seenPids.add(pid);
    return file;
  }

  /** Whether `pid` is one of this VSS's processes (see ours()). */
  owns(pid: number): boolean {
    return ours(pid, this.binary, [this.vssDir, ...(this.spmAddress ? [`--spm ${this.spmAddress}`] : [])]);
  }

  running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  spm(): ServiceClient<typeof spmOps> {
    return new ServiceClient(spmOps, this.clientPool, parseAddress(this.read().spm));
  }

  peer(address: string): ServiceClient<typeof peerOps> {
    return new ServiceClient(peerOps, this.nodePool, parseAddress(address));
  }

  router(address: string): ServiceClient<typeof routerOps> {
    return new ServiceClient(routerOps, this.clientPool, parseAddress(address));
  }

  status(): Promise<VssStatus> {
    return this.spm().call("vss.status", {});
  }

  /** After a kill: `up` restarted the slot (a new live pid in vss.json); returns the new pid. */
  async waitRestarted(slot: Slot, oldPid: number): Promise<number> {
    let fresh = oldPid;
    try {
      await eventually(`up restarts ${slotName(slot)}`, soakPlan.restartWaitMs, () => {
        this.checkRunning();
        fresh = pidOf(this.read(), slot);
        return (fresh !== oldPid && alive(fresh)) || `vss.json still says pid ${fresh}`;
      });
    } catch (error) {
      throw new SystemFailure(`up did not restart ${slotName(slot)} (pid ${oldPid}) within ${soakPlan.restartWaitMs} ms: ${(error as Error).message}\nup's last lines:\n${this.stderrTail()}`);
    }
    return fresh;
  }

  /** Every peer of the VSS up at the SPM, each at the address vss.json gives it. */
  async waitAllPeersUp(why: string): Promise<void> {
    try {
      await eventually(`all peers up after ${why}`, soakPlan.backWaitMs, async () => {
        this.checkRunning();
        const file = this.read();
        const { peers } = await this.spm().call("peers.list", {});
        const wrong = file.peers.flatMap((peer) => {
          const seen = peers.find((candidate) => candidate.id === peer.id);
          if (!seen) return [`${peer.id} unknown`];
          if (seen.state !== "up") return [`${peer.id} ${seen.state}`];
          if (seen.address !== peer.address) return [`${peer.id} registered at ${seen.address}, runs at ${peer.address}`];
          return [];
        });
        return wrong.length === 0 || wrong.join(", ");
      });
    } catch (error) {
      throw new SystemFailure((error as Error).message);
    }
  }

  /** Nothing under-replicated and no healing queued or running, every peer up. */
  async waitHealed(why: string, timeoutMs: number): Promise<void> {
    await this.waitAllPeersUp(why);
    try {
      await eventually(`rf restored after ${why}`, timeoutMs, async () => {
        this.checkRunning();
        const status = await this.status();
        const down = status.peers.filter((peer) => peer.state !== "up").map((peer) => `${peer.id} ${peer.state}`);
        const { underReplicated, healing } = status;
        if (down.length === 0 && underReplicated === 0 && healing.queued === 0 && healing.inFlight === 0) return true;
        return `under-replicated ${underReplicated}, healing queued ${healing.queued} in flight ${healing.inFlight}, failures ${healing.failures}${healing.lastError ? ` (last: ${healing.lastError})` : ""}${down.length ? `, not up: ${down.join(", ")}` : ""}`;
      });
    } catch (error) {
      throw new SystemFailure((error as Error).message);
    }
  }

  /** `up` itself must still be running: it exits only when a child keeps dying. */
  checkRunning(): void {
    if (!this.running()) throw new SystemFailure(`up exited (code ${this.proc.exitCode ?? this.proc.signalCode}); its last lines:\n${this.stderrTail()}`);
  }

  /** SIGTERM `up` (it stops its children), then kill -9 by pid whatever is left. */
  async stop(): Promise<string[]> {
    const leftovers: string[] = [];
    try {
      this.read();
    } catch {
      // vss.json may be half-written at a crash; the pids seen before are kept
    }
    for (const pid of this.seenPids) if (this.owns(pid)) signal(pid, "SIGCONT"); // a stopped child cannot take SIGTERM
    if (this.running()) {
      signal(this.proc.pid, "SIGTERM");
      const done = await Promise.race([this.proc.exited.then(() => true), Bun.sleep(20_000).then(() => false)]);
      if (!done) {
        leftovers.push(`up (pid ${this.proc.pid}) did not stop within 20 s of SIGTERM`);
        signal(this.proc.pid, "SIGKILL");
        await this.proc.exited;
      }
    }
    for (const pid of this.seenPids) {
      if (this.owns(pid)) {
        leftovers.push(`pid ${pid} outlived up`);
        signal(pid, "SIGKILL");
      }
    }
    this.clientPool.close();
    this.nodePool.close();
    closeSync(this.logFd);
    return leftovers;
  }
}
