// A whole VSS on this machine: one SPM, its peers and routers as separate processes. Used by
// `mictlanx up`, the integration tests and bench/. Data lives under one directory, so starting
// again on the same directory brings back the same data (peer ids are fixed: peer-0, peer-1…).
// With `ha` (`up --ha`): PostgreSQL and etcd first (ha-services.ts), then upHaSpms SPMs sharing
// the catalog in PostgreSQL and electing a leader on etcd (DIR/spm-0…, ports BASE+100…), and
// the routers and peers given every SPM (`--spm a,b,c`).
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { secretsKeyFile } from "../lib/data-dir.ts";
import { z } from "zod";
import { join } from "node:path";
import { writeFileDurable } from "../lib/durable-file.ts";
import { upAddresses, upHaAddresses } from "../lib/defaults.ts";
import { MictlanxError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { RpcPool, ServiceClient } from "../net/pool.ts";
import { parseAddress } from "../net/address.ts";
import { spmOps } from "../protocol/spm.ts";
import { startRole, stopRole, type RoleProcess } from "./process.ts";
import { freePort, startHaServices, type HaServices } from "./ha-services.ts";
import { clientSecurityFrom, prepareLocalSecurity, type LocalSecurity, type SharedSecurity } from "./security.ts";
import { readCredentialsFile } from "../lib/credentials-file.ts";
import type { ClientSecurity } from "../net/connection.ts";
import type { NodeRole } from "../lib/node-identity.ts";

export interface LocalVssOptions {
  dir: string;
  peers: number;
  routers: number;
  /** SPM at base, routers at base+1…, peers at base+10…; 0 picks free ports for every role. */
  basePort: number;
  /** Extra flags per role, e.g. shorter timeouts in tests. */
  spmArgs?: string[];
  peerArgs?: string[];
  routerArgs?: string[];
  /** Router i serves S3 on BASE+80+i (any free port when basePort is 0); `up` turns it on. */
  s3?: boolean;
  /** Write each role's stderr to DIR/logs/NAME.log (default true). */
  logs?: boolean;
  command?: string[];
  /** No TLS and no access keys (`up --insecure`); by default DIR gets a CA, certificates and an admin key. */
  insecure?: boolean;
  /** Take the CA, certificates and admin key from here instead of DIR (tests: one set for all their VSSs). */
  sharedSecurity?: SharedSecurity;
  /**
   * Several SPMs on one catalog electing a leader: `true` (`up --ha`) starts PostgreSQL and etcd
   * from the machine's packages under DIR; or the catalog and coordination URLs of ones already
   * running (tests: a shared `sqlite:DIR` catalog and a test etcd).
   */
  ha?: boolean | { catalogUrl: string; coordinationUrl: string };
}

export interface PeerProcess extends RoleProcess {
  id: string;
  data: string;
}

export interface LocalVss {
  dir: string;
  /** The first SPM (spms[0]): the one SPM without `ha`. */
  spm: RoleProcess;
  /** Every SPM, in the order routers and peers are given them. */
  spms: RoleProcess[];
  /** PostgreSQL and etcd, with `ha`. */
  services?: HaServices;
  routers: RoleProcess[];
  peers: PeerProcess[];
  options: LocalVssOptions;
  /** Its certificates and admin key (DIR/certs, DIR/credentials.json), unless insecure. */
  security: LocalSecurity;
  /** What a client of this VSS connects with: TLS and the admin key (undefined when insecure). */
  clientSecurity(): ClientSecurity | undefined;
  /** The shape written to DIR/vss.json. */
  describe(): VssFile;
  /** Where a role's stderr goes (DIR/logs/NAME.log), unless logs are off. */
  logFile(name: string): string | undefined;
  startPeer(index: number): Promise<PeerProcess>;
  /** Start SPM `index` (default 0) again, on the port it had. */
  startSpm(index?: number): Promise<RoleProcess>;
  startRouter(index: number): Promise<RoleProcess>;
  stop(): Promise<void>;
}

/** DIR/vss.json: where each role listens and its pid (rewritten when `up` restarts one). */
export const vssFileSchema = z.object({
  spm: z.string(),
  routers: z.array(z.string()),
  peers: z.array(z.object({ id: z.string(), address: z.string(), pid: z.number().int(), data: z.string() })),
  spmPid: z.number().int(),
  /** Every SPM with its pid (the first is `spm`); absent in files written before several SPMs. */
  spms: z.array(z.object({ address: z.string(), pid: z.number().int() })).optional(),
  /** PostgreSQL and etcd under `up --ha`. */
  services: z.object({ postgres: z.object({ address: z.string(), pid: z.number().int() }), etcd: z.object({ address: z.string(), pid: z.number().int() }) }).optional(),
  routerPids: z.array(z.number().int()),
  /** The process that started the VSS (`mictlanx up`, a test); absent in files written before it was kept. */
  ownerPid: z.number().int().optional(),
  /** Started with --insecure: no TLS, no access keys. Absent in files written before security existed (they were all insecure). */
  insecure: z.boolean().optional(),
  /** The admin key `up` made (DIR/credentials.json), unless insecure. */
  credentials: z.string().optional(),
  /** Router 0's S3 endpoint (https://, or http:// when insecure), when the routers serve S3. */
  s3: z.string().optional(),
  /** Every router's S3 endpoint, in router order. */
  s3Endpoints: z.array(z.string()).optional(),
});
export type VssFile = z.infer<typeof vssFileSchema>;

/** DIR/vss.json of a VSS started by `up` (or startLocalVss), parsed. */
export function readVssFile(dir: string): VssFile {
  return vssFileSchema.parse(JSON.parse(readFileSync(join(dir, "vss.json"), "utf8")));
}

export const vssReadyTimeoutMs = 20_000;

/**
 * The VSS DIR/vss.json describes, if it is running: one of its pids is alive and its SPM
 * answers as an SPM. A stale file (pids gone, or taken by other programs since) is not.
 */
export async function runningVss(dir: string): Promise<VssFile | undefined> {
  const file = vssFileIn(dir);
  if (!file || alivePidsOf(file).length === 0) return undefined;
  const security = securityOfFile(file);
  const pool = new RpcPool({ role: "spm", expectRole: "spm", connectAttempts: 1, connectTimeoutMs: limits.upRunningCheckTimeoutMs, ...(security ? { security } : {}) });
  try {
    await new ServiceClient(spmOps, pool, parseAddress(file.spm)).call("peers.list", {}, { timeoutMs: limits.upRunningCheckTimeoutMs });
    return file;
  } catch {
    return undefined; // not answering: not this VSS (a port taken by something else is said when it is bound)
  } finally {
    pool.close();
  }
}

/** How to reach the VSS a vss.json describes: with the admin key it names, unless it is insecure. */
function securityOfFile(file: VssFile): ClientSecurity | undefined {
  if (file.insecure !== false || file.credentials === undefined) return undefined;
  try {
    return clientSecurityFrom(readCredentialsFile(file.credentials));
  } catch {
    return undefined; // unreadable: treated as not running, and `up` says what is wrong when it starts
  }
}

/** DIR/vss.json, or undefined when there is none we can read. */
export function vssFileIn(dir: string): VssFile | undefined {
  try {
    return readVssFile(dir);
  } catch {
    return undefined;
  }
}

/** The pids a vss.json names that are alive (maybe its VSS, maybe programs that took them since). */
export function alivePidsOf(file: VssFile): number[] {
  const pids = [file.spmPid, ...(file.spms ?? []).map((spm) => spm.pid), ...(file.services ? [file.services.postgres.pid, file.services.etcd.pid] : []), ...file.routerPids, ...file.peers.map((peer) => peer.pid), ...(file.ownerPid === undefined ? [] : [file.ownerPid])];
  return pids.filter(isAlive);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "EPERM"; // alive, another user's
  }
}

export async function startLocalVss(options: LocalVssOptions): Promise<LocalVss> {
  const dir = options.dir;
  const logsDir = join(dir, "logs");
  mkdirSync(logsDir, { recursive: true });
  const planned = upAddresses(options.basePort, options.routers, options.peers);
  const port = (address: string) => (options.basePort === 0 ? "0" : address.split(":")[1] ?? "0");
  /** A restarted role comes back on the port it had, so the others find it where they left it. */
  const portOf = (role: RoleProcess | undefined, planned: string) => (role ? (role.address.split(":")[1] ?? "0") : port(planned));
  /**
   * With free ports (basePort 0), a role restarted on its port must not take its metrics port
   * from it (port + 1000, which the OS may have given another role meanwhile): it gets the one
   * it had, or a free one. Flags a caller passes come after, and win.
   */
  const metricsOf = (role: RoleProcess | undefined): string[] => {
    if (options.basePort !== 0) return [];
    const previous = role?.metricsUrl ? /:(\d+)\/metrics$/.exec(role.metricsUrl)?.[1] : undefined;
    return ["--metrics-port", previous ?? "0"];
  };
  const log = (name: string) => (options.logs === false ? undefined : join(logsDir, `${name}.log`));
  const command = options.command;

  const security = await prepareLocalSecurity(dir, options.insecure ?? false, options.sharedSecurity);
  const tlsArgs = (role: NodeRole, id: string): Promise<string[]> => (security.insecure ? Promise.resolve(["--insecure"]) : security.roleArgs(role, id));
  // The SPM imports the admin key `up` wrote when it makes its catalog: one key, one file.
  const credentialsArgs = security.insecure ? [] : ["--credentials", security.credentialsPath];

  const ha = options.ha !== undefined && options.ha !== false;
  const spmPlanned = ha ? upHaAddresses(options.basePort, limits.upHaSpms).spms : [planned.spm];
  const services = options.ha === true ? await startServices(options.basePort, dir, logsDir) : undefined;
  const shared = services ?? (typeof options.ha === "object" ? options.ha : undefined);
  const haArgs = shared ? ["--catalog", shared.catalogUrl, "--coordination", shared.coordinationUrl] : [];
  /** One SPM is `spm` (DIR/spm, its certificate's id); several are spm-0, spm-1… */
  const spmName = (index: number) => (ha ? `spm-${index}` : "spm");
  const spawnSpm = async (index: number, previous?: RoleProcess) => {
    const name = spmName(index);
    const port = portOf(previous, spmPlanned[index] ?? "0:0");
    return startRole(name, ["spm", "--port", port, ...metricsOf(previous), "--data", join(dir, name), ...(await tlsArgs("spm", name)), ...credentialsArgs, ...haArgs, ...(options.spmArgs ?? [])], log(name), command);
  };
  const spms: RoleProcess[] = [];
  try {
    // The first alone (it makes the catalog, and imports the admin key into it), then the others.
    spms.push(await spawnSpm(0));
    shareSecretsKey(join(dir, spmName(0)), spmPlanned.slice(1).map((_, i) => join(dir, spmName(i + 1))));
    spms.push(...(await Promise.all(spmPlanned.slice(1).map((_, i) => spawnSpm(i + 1)))));
  } catch (error) {
    await Promise.all(spms.map((role) => stopRole(role)));
    await services?.stop();
    throw error;
  }
  /** What routers and peers are given: every SPM (`--spm a,b,c`). */
  const spmList = () => vss.spms.map((role) => role.address).join(",");

  const spawnPeer = async (index: number): Promise<PeerProcess> => {
    const id = `peer-${index}`;
    const data = join(dir, "peers", id);
    const port = portOf(vss.peers[index], planned.peers[index] ?? "0:0");
    const role = await startRole(id, ["peer", "--port", port, ...metricsOf(vss.peers[index]), "--data", data, "--id", id, "--spm", spmList(), ...(await tlsArgs("peer", id)), ...(options.peerArgs ?? [])], log(id), command);
    return { ...role, id, data };
  };
  /** Router i's S3 port: BASE+80+i, any free one with base 0; a restarted router keeps the one it had. */
  const s3PortOf = (previous: RoleProcess | undefined, index: number) =>
    previous?.s3Url !== undefined ? (new URL(previous.s3Url).port || "0") : options.basePort === 0 ? "0" : String(options.basePort + upS3PortOffset + index);
  const spawnRouter = async (index: number) => {
    const id = `router-${index}`;
    const port = portOf(vss.routers[index], planned.routers[index] ?? "0:0");
    const s3Args = options.s3 ? ["--s3-port", s3PortOf(vss.routers[index], index)] : [];
    return startRole(id, ["router", "--port", port, ...metricsOf(vss.routers[index]), "--spm", spmList(), ...s3Args, ...(await tlsArgs("router", id)), ...(options.routerArgs ?? [])], log(id), command);
  };

  const vss: LocalVss = {
    dir,
    spm: spms[0] as RoleProcess,
    spms,
    ...(services ? { services } : {}),
    routers: [],
    peers: [],
    options,
    security,
    clientSecurity: () => (security.insecure ? undefined : security.clientSecurity()),
    logFile: log,
    describe: () => ({
      spm: vss.spm.address,
      routers: vss.routers.map((router) => router.address),
      peers: vss.peers.map((peer) => ({ id: peer.id, address: peer.address, pid: peer.pid, data: peer.data })),
      spmPid: vss.spm.pid,
      spms: vss.spms.map((role) => ({ address: role.address, pid: role.pid })),
      ...(services ? { services: { postgres: { address: services.postgres.address, pid: services.postgres.pid }, etcd: { address: services.etcd.address, pid: services.etcd.pid } } } : {}),
      routerPids: vss.routers.map((router) => router.pid),
      ownerPid: process.pid,
      insecure: security.insecure,
      ...(security.insecure ? {} : { credentials: security.credentialsPath }),
      ...s3Endpoints(vss.routers),
    }),
    startPeer: async (index) => {
      const peer = await spawnPeer(index);
      vss.peers[index] = peer;
      writeVssFile(vss);
      return peer;
    },
    startSpm: async (index = 0) => {
      const spm = await spawnSpm(index, vss.spms[index]);
      vss.spms[index] = spm;
      vss.spm = vss.spms[0] as RoleProcess;
      writeVssFile(vss);
      return spm;
    },
    startRouter: async (index) => {
      const router = await spawnRouter(index);
      vss.routers[index] = router;
      writeVssFile(vss);
      return router;
    },
    stop: async () => {
      await Promise.all([...vss.routers, ...vss.peers].map((role) => stopRole(role)));
      await Promise.all(vss.spms.map((role) => stopRole(role)));
      await vss.services?.stop();
    },
  };
  try {
    vss.peers = await Promise.all(Array.from({ length: options.peers }, (_, i) => spawnPeer(i)));
    vss.routers = await Promise.all(Array.from({ length: options.routers }, (_, i) => spawnRouter(i)));
    await waitForPeersUp(vss.spm.address, options.peers, vssReadyTimeoutMs, vss.clientSecurity());
  } catch (error) {
    await vss.stop();
    throw error;
  }
  writeVssFile(vss);
  return vss;
}

function writeVssFile(vss: LocalVss): void {
  writeFileDurable(join(vss.dir, "vss.json"), `${JSON.stringify(vss.describe(), null, 2)}\n`);
}

/** Wait until the SPM sees `count` peers up, so the VSS takes puts when this returns. */
export async function waitForPeersUp(spmAddress: string, count: number, timeoutMs = vssReadyTimeoutMs, security?: ClientSecurity): Promise<void> {
  const pool = new RpcPool({ role: "spm", expectRole: "spm", ...(security ? { security } : {}) });
  const spm = new ServiceClient(spmOps, pool, parseAddress(spmAddress));
  const deadline = Date.now() + timeoutMs;
  let up = 0;
  try {
    while (Date.now() < deadline) {
      try {
        const { peers } = await spm.call("peers.list", {});
        up = peers.filter((peer) => peer.state === "up").length;
        if (up >= count) return;
      } catch {
        // not answering yet
      }
      await Bun.sleep(100);
    }
  } finally {
    pool.close();
  }
  throw new MictlanxError("timeout", `only ${up} of ${count} peers reported to the SPM at ${spmAddress} within ${timeoutMs} ms`);
}

/** PostgreSQL and etcd on their `up --ha` ports (BASE+110…), or on free ones with base 0. */
async function startServices(basePort: number, dir: string, logsDir: string): Promise<HaServices> {
  const planned = upHaAddresses(basePort, limits.upHaSpms);
  const port = async (wanted: number) => (basePort === 0 ? freePort() : wanted);
  return startHaServices({ dir, logsDir, postgresPort: await port(planned.postgres.port), etcdPort: await port(planned.etcd.port), etcdPeerPort: await port(planned.etcdPeer.port) });
}

/** Router i's S3 port under `up` is BASE + this + i. */
export const upS3PortOffset = 80;

function s3Endpoints(routers: readonly RoleProcess[]): { s3?: string; s3Endpoints?: string[] } {
  const endpoints = routers.flatMap((router) => (router.s3Url === undefined ? [] : [router.s3Url]));
  const first = endpoints[0];
  return first === undefined ? {} : { s3: first, s3Endpoints: endpoints };
}

/**
 * Every SPM on one PostgreSQL catalog must hold the same secrets.key (the master key sealing the
 * access keys' secrets; it never goes into the database): the first SPM made it in its data dir,
 * and the others get a copy (mode 0600) before they start. A sqlite catalog keeps its own beside
 * it, so there is nothing to copy.
 */
function shareSecretsKey(fromDir: string, toDirs: string[]): void {
  const source = join(fromDir, secretsKeyFile);
  if (!existsSync(source)) return;
  for (const to of toDirs) {
    mkdirSync(to, { recursive: true });
    const target = join(to, secretsKeyFile);
    if (!existsSync(target)) copyFileSync(source, target);
    chmodSync(target, 0o600);
  }
}
