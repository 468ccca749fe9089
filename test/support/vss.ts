// Integration tests run the real program as separate processes on loopback, in temp dirs, on
// ports the OS picks, and kill them with `kill -9` by the pid they started.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startLocalVss, type LocalVss, type LocalVssOptions } from "../../src/local/vss.ts";
import { startRole, type RoleProcess } from "../../src/local/process.ts";
import { Client } from "../../src/client/client.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { spmOps } from "../../src/protocol/spm.ts";
import type { ClientSecurity } from "../../src/net/connection.ts";
import type { NodeRole } from "../../src/lib/node-identity.ts";
import { nodeSecurity, sharedSecurity } from "./security.ts";

/** The program under test: MICTLANX_BIN (e.g. dist/mictlanx) or the sources through this Bun. */
export function programCommand(): string[] {
  const bin = process.env.MICTLANX_BIN;
  return bin ? [resolve(bin)] : [process.execPath, resolve(import.meta.dir, "../../src/main.ts")];
}

export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `mictlanx-${label}-`));
}

/** Short timings so loss is noticed in seconds: suspect after 1 s, down after 3 s; old versions collected 2 s after they are replaced. */
export const fastSpmArgs = ["--suspect-after", "1s", "--down-after", "3s", "--reader-grace", "2s"];

export async function startTestVss(options: Partial<LocalVssOptions> & { label: string; insecure?: boolean }): Promise<LocalVss & { cleanup(): Promise<void> }> {
  const dir = options.dir ?? tempDir(options.label);
  const vss = await startLocalVss({
    dir,
    peers: options.peers ?? 3,
    routers: options.routers ?? 1,
    basePort: 0,
    spmArgs: options.spmArgs ?? fastSpmArgs,
    ...(options.peerArgs ? { peerArgs: options.peerArgs } : {}),
    ...(options.routerArgs ? { routerArgs: options.routerArgs } : {}),
    ...(options.ha === undefined ? {} : { ha: options.ha }),
    command: programCommand(),
    ...(options.insecure ? { insecure: true } : { sharedSecurity }),
  });
  return Object.assign(vss, {
    cleanup: async () => {
      for (const role of [...vss.spms, ...vss.routers, ...vss.peers]) kill9(role);
      await Promise.all([...vss.spms, ...vss.routers, ...vss.peers].map((role) => role.exited));
      await vss.services?.kill();
      if (!process.env.MICTLANX_KEEP) rmSync(dir, { recursive: true, force: true });
    },
  });
}

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** kill -9 by the pid we started; never by name. */
export function kill9(role: RoleProcess): void {
  if (role.proc.exitCode === null && role.proc.signalCode === null) process.kill(role.pid, "SIGKILL");
}

/** A client of the test VSS with no cache, so every read-back really comes from the peers. */
export function clientFor(vss: LocalVss, options: { routers?: string[]; chunkSize?: number; concurrency?: number; cacheBytes?: number; retryWindowMs?: number } = {}): Client {
  return new Client({ routers: options.routers ?? vss.routers.map((router) => router.address), cacheBytes: 0, ...credentialsOf(vss), ...options });
}

/** What `new Client` needs for this VSS: its admin key and CA (nothing for an insecure one). */
export function credentialsOf(vss: LocalVss): { accessKey?: string; secretKey?: string; ca?: string } {
  return vss.security.insecure ? {} : { ...vss.security.credentials };
}

/** An RpcPool's security for this VSS as a client (the admin key), e.g. to call the SPM's admin ops. */
export function clientPoolOptions(vss: LocalVss): { security?: ClientSecurity } {
  const security = vss.clientSecurity();
  return security ? { security } : {};
}

/** An RpcPool's options for this VSS as one of its nodes would call (peers' ops as the SPM…). */
export async function nodePoolOptions(vss: LocalVss, role: NodeRole, id?: string): Promise<{ security?: ClientSecurity; identity?: { role: NodeRole; id: string } }> {
  if (vss.security.insecure) return {};
  return nodeSecurity(role, id);
}

export async function spmStatus(vss: LocalVss) {
  const pool = new RpcPool({ role: "spm", ...clientPoolOptions(vss) });
  try {
    return await new ServiceClient(spmOps, pool, parseAddress(vss.spm.address)).call("vss.status", {});
  } finally {
    pool.close();
  }
}

/** Poll until `check` returns true, or fail after `timeoutMs` with the last reason. */
export async function eventually(what: string, timeoutMs: number, check: () => Promise<boolean | string> | boolean | string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: boolean | string = false;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last === true) return;
    } catch (error) {
      last = (error as Error).message;
    }
    await Bun.sleep(200);
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms (last: ${String(last)})`);
}

/** Run the CLI as a user would; returns exit code, stdout and stderr. */
export async function cli(args: string[], options: { env?: Record<string, string>; stdin?: Uint8Array } = {}) {
  const proc = Bun.spawn([...programCommand(), ...args], {
    stdin: options.stdin ? new Blob([options.stdin]) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...options.env },
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

export { startRole };
