// What `mictlanx up --ha` runs besides mictlanx itself: PostgreSQL (the SPMs' shared catalog) and
// etcd (their leader election), from the machine's own packages, their data under the VSS's DIR
// (DIR/postgres, DIR/etcd), their logs in DIR/logs. Tests start them through here too.
//
// - Binaries: on PATH, else where Debian installs them (/usr/lib/postgresql/<newest>/bin,
//   /usr/bin/etcd); missing ones are a usage error naming the package (`postgresql`, `etcd-server`).
// - PostgreSQL refuses to run as root. When this process is root, initdb and postgres run as an
//   unprivileged user: `mictlanx` (made with useradd if it is missing), else `nobody`. The data dir
//   is chowned to it, DIR made searchable (o+x: passing through, not listing), and the programs
//   are started with `setpriv` (which execs: the pid we hold is postgres's own), else `runuser`.
//   It listens on 127.0.0.1 only, with trust authentication for the user `mictlanx` and its socket
//   in its data dir: a local VSS's catalog, not a shared database server.
// - Each process gets a watchdog (a shell that polls) that stops it should this process die
//   without stopping it (kill -9 of `up`), as the roles stop by MICTLANX_PARENT_PID.
// - stop(): SIGINT to PostgreSQL (its fast shutdown), SIGTERM to etcd, SIGKILL after
//   upServiceStopGraceMs; always by the pid started, never by name.
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { MictlanxError, UsageError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { logTail } from "./supervisor.ts";

export interface ServiceProcess {
  name: string;
  pid: number;
  /** host:port it listens on. */
  address: string;
  proc: Bun.Subprocess;
  exited: Promise<number>;
  /** Stop it (its own graceful signal, then SIGKILL) and its watchdog. */
  stop(): Promise<void>;
  /** kill -9 (tests). */
  kill(): Promise<void>;
}

export interface HaServices {
  postgres: ServiceProcess;
  etcd: ServiceProcess;
  /** `--catalog` for the SPMs: postgres://mictlanx@host:port/mictlanx */
  catalogUrl: string;
  /** `--coordination` for the SPMs: etcd://host:port */
  coordinationUrl: string;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

export interface HaServicesOptions {
  /** The VSS's DIR: PostgreSQL in DIR/postgres, etcd in DIR/etcd. */
  dir: string;
  postgresPort: number;
  etcdPort: number;
  etcdPeerPort: number;
  /** Where their logs go (DIR/logs/postgres.log, etcd.log). */
  logsDir: string;
}

/** The database and role the SPMs use. */
export const catalogDatabase = "mictlanx";
const catalogRole = "mictlanx";
const host = "127.0.0.1";
const pollMs = 100;

export async function startHaServices(options: HaServicesOptions): Promise<HaServices> {
  const postgresBin = findPostgres();
  const etcdBin = findEtcd();
  const etcd = await startEtcd({ binary: etcdBin, dir: join(options.dir, "etcd"), clientPort: options.etcdPort, peerPort: options.etcdPeerPort, logFile: join(options.logsDir, "etcd.log") });
  let postgres: ServiceProcess;
  try {
    postgres = await startPostgres({ bin: postgresBin, dir: join(options.dir, "postgres"), vssDir: options.dir, port: options.postgresPort, logFile: join(options.logsDir, "postgres.log") });
  } catch (error) {
    await etcd.stop();
    throw error;
  }
  return {
    postgres,
    etcd,
    catalogUrl: `postgres://${catalogRole}@${postgres.address}/${catalogDatabase}`,
    coordinationUrl: `etcd://${etcd.address}`,
    stop: async () => {
      await Promise.all([postgres.stop(), etcd.stop()]);
    },
    kill: async () => {
      await Promise.all([postgres.kill(), etcd.kill()]);
    },
  };
}

// --- finding the programs ------------------------------------------------------------------

export interface PostgresBinaries {
  initdb: string;
  postgres: string;
}

/** initdb and postgres from one place: PATH, else the newest /usr/lib/postgresql/N/bin. */
export function findPostgres(searchPath = process.env.PATH ?? "", debianRoot = "/usr/lib/postgresql"): PostgresBinaries {
  const onPath = Bun.which("initdb", { PATH: searchPath });
  if (onPath) {
    const bin = dirname(onPath);
    const postgres = Bun.which("postgres", { PATH: searchPath }) ?? join(bin, "postgres");
    if (existsSync(postgres)) return { initdb: onPath, postgres };
  }
  for (const version of debianVersions(debianRoot)) {
    const bin = join(debianRoot, version, "bin");
    if (existsSync(join(bin, "initdb")) && existsSync(join(bin, "postgres"))) return { initdb: join(bin, "initdb"), postgres: join(bin, "postgres") };
  }
  throw new UsageError(`up --ha needs PostgreSQL (initdb and postgres), found neither on PATH nor in ${debianRoot}/*/bin; install Debian's package: apt-get install postgresql`);
}

/** etcd on PATH, else Debian's /usr/bin/etcd. */
export function findEtcd(searchPath = process.env.PATH ?? "", debianEtcd = "/usr/bin/etcd"): string {
  const found = Bun.which("etcd", { PATH: searchPath }) ?? (existsSync(debianEtcd) ? debianEtcd : undefined);
  if (found === undefined) throw new UsageError(`up --ha needs etcd, found neither on PATH nor at ${debianEtcd}; install Debian's package: apt-get install etcd-server`);
  return found;
}

/** Version dirs under /usr/lib/postgresql, newest first (15 before 9.6). */
function debianVersions(root: string): string[] {
  try {
    return readdirSync(root).filter((name) => /^\d+(\.\d+)?$/.test(name)).sort((a, b) => Number(b) - Number(a));
  } catch {
    return [];
  }
}

// --- who runs PostgreSQL -----------------------------------------------------------------

export interface ServiceUser {
  name: string;
  uid: number;
  gid: number;
}

/** Whom PostgreSQL runs as: this process's user, unless that is root (then `mictlanx`, made if missing, else `nobody`). */
export function postgresUser(): ServiceUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const existing = passwdEntry(catalogRole);
  if (existing) return existing;
  const made = Bun.spawnSync(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", catalogRole], { stdout: "ignore", stderr: "pipe" });
  const created = made.exitCode === 0 ? passwdEntry(catalogRole) : undefined;
  const user = created ?? passwdEntry("nobody");
  if (!user) throw new UsageError(`PostgreSQL cannot run as root, and neither the user ${catalogRole} (useradd: ${made.stderr.toString().trim() || "failed"}) nor nobody is available; run up --ha as an ordinary user`);
  return user;
}

/** A user's uid and gid from /etc/passwd (no spawn, no NSS: the users useradd makes are there). */
export function passwdEntry(name: string, passwd = "/etc/passwd"): ServiceUser | undefined {
  let text: string;
  try {
    text = readFileSync(passwd, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const [user, , uid, gid] = line.split(":");
    if (user === name && uid !== undefined && gid !== undefined) return { name, uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

/** The command prefix that runs a program as `user` (nothing when it is this process's own). */
export function asUser(user: ServiceUser | undefined): string[] {
  if (user === undefined) return [];
  // setpriv execs the program in place, so the pid Bun.spawn returns is the program's own.
  if (Bun.which("setpriv")) return ["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", "--"];
  return ["runuser", "-u", user.name, "--"];
}

/**
 * The user must reach its data dir: every directory on the way must be searchable by it. Those
 * of the VSS's own DIR are made so (o+x: passing through, not listing); one above DIR that is not
 * (a home directory of mode 0700) is the user's to change, so say which.
 */
function makeReachable(dataDir: string, vssDir: string, user: ServiceUser): void {
  const top = resolve(vssDir);
  for (let path = dirname(resolve(dataDir)); ; path = dirname(path)) {
    const stat = statSync(path);
    const searchable = stat.uid === user.uid ? (stat.mode & 0o100) !== 0 : stat.gid === user.gid ? (stat.mode & 0o010) !== 0 : (stat.mode & 0o001) !== 0;
    if (!searchable) {
      if (path.length < top.length || !path.startsWith(top)) {
        throw new UsageError(`PostgreSQL runs as ${user.name}, which cannot reach ${dataDir}: ${path} is not searchable by others; use a --data outside it (e.g. /var/lib/mictlanx), or chmod o+x ${path}`);
      }
      chmodSync(path, stat.mode | 0o001);
    }
    if (path === "/" || path === dirname(path)) return;
  }
}

// --- PostgreSQL ------------------------------------------------------------------------------

interface PostgresOptions {
  bin: PostgresBinaries;
  dir: string;
  vssDir: string;
  port: number;
  logFile: string;
}

async function startPostgres(options: PostgresOptions): Promise<ServiceProcess> {
  const user = postgresUser();
  mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  if (user) {
    chownSync(options.dir, user.uid, user.gid);
    makeReachable(options.dir, options.vssDir, user);
  }
  if (!existsSync(join(options.dir, "PG_VERSION"))) initCluster(options, user);
  const address = `${host}:${options.port}`;
  // -k: its socket in its own dir (the default, /var/run/postgresql, may not exist or be another's).
  const args = [...asUser(user), options.bin.postgres, "-D", options.dir, "-p", String(options.port), "-h", host, "-k", options.dir, "-c", "logging_collector=off"];
  const service = spawnService("postgres", args, address, options.logFile, "SIGINT");
  try {
    await waitFor(service, options.logFile, () => createCatalogDatabase(options.port));
  } catch (error) {
    await service.kill();
    throw error;
  }
  return service;
}

/** initdb: UTF-8, the superuser `mictlanx`, trust for connections from this host only (it listens on 127.0.0.1). */
function initCluster(options: PostgresOptions, user: ServiceUser | undefined): void {
  const logFd = openSync(options.logFile, "a");
  try {
    const result = Bun.spawnSync([...asUser(user), options.bin.initdb, "-D", options.dir, "-U", catalogRole, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions"], { stdin: "ignore", stdout: logFd, stderr: logFd });
    if (result.exitCode !== 0) throw new MictlanxError("unavailable", `initdb of ${options.dir} failed (exit ${result.exitCode}); see ${options.logFile}:\n${logTail(options.logFile).join("\n")}`);
  } finally {
    closeSync(logFd);
  }
}

/** Answer a query, and make the catalog's database if it is not there yet. */
async function createCatalogDatabase(port: number): Promise<void> {
  const sql = new Bun.SQL({ url: `postgres://${catalogRole}@${host}:${port}/postgres`, max: 1, connectionTimeout: 2, idleTimeout: 1 });
  try {
    const found = await sql.unsafe("SELECT 1 FROM pg_database WHERE datname = $1", [catalogDatabase]);
    if (found.length === 0) await sql.unsafe(`CREATE DATABASE ${catalogDatabase}`);
  } finally {
    await sql.close();
  }
}

// --- etcd ------------------------------------------------------------------------------------

interface EtcdOptions {
  binary: string;
  dir: string;
  clientPort: number;
  peerPort: number;
  logFile: string;
}

async function startEtcd(options: EtcdOptions): Promise<ServiceProcess> {
  mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  const clientUrl = `http://${host}:${options.clientPort}`;
  const peerUrl = `http://${host}:${options.peerPort}`;
  const args = [
    options.binary,
    "--name", "mictlanx",
    "--data-dir", options.dir,
    "--listen-client-urls", clientUrl,
    "--advertise-client-urls", clientUrl,
    "--listen-peer-urls", peerUrl,
    "--initial-advertise-peer-urls", peerUrl,
    "--initial-cluster", `mictlanx=${peerUrl}`,
  ];
  const service = spawnService("etcd", args, `${host}:${options.clientPort}`, options.logFile, "SIGTERM");
  try {
    await waitFor(service, options.logFile, async () => {
      const reply = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1_000) });
      const body = await reply.text();
      if (!reply.ok || !/"health"\s*:\s*"true"/.test(body)) throw new Error(`HTTP ${reply.status} ${body}`);
    });
  } catch (error) {
    await service.kill();
    throw error;
  }
  return service;
}

// --- processes -------------------------------------------------------------------------------

function spawnService(name: string, args: string[], address: string, logFile: string, stopSignal: "SIGINT" | "SIGTERM"): ServiceProcess {
  const logFd = openSync(logFile, "a");
  const proc = Bun.spawn(args, { stdin: "ignore", stdout: logFd, stderr: logFd });
  closeSync(logFd);
  const watchdog = startWatchdog(proc.pid, stopSignal);
  const exited = proc.exited;
  const running = () => proc.exitCode === null && proc.signalCode === null;
  const end = () => {
    if (watchdog.exitCode === null && watchdog.signalCode === null) watchdog.kill("SIGKILL");
  };
  return {
    name,
    pid: proc.pid,
    address,
    proc,
    exited,
    stop: async () => {
      if (running()) {
        proc.kill(stopSignal);
        const done = await Promise.race([exited.then(() => true), Bun.sleep(limits.upServiceStopGraceMs).then(() => false)]);
        if (!done) proc.kill("SIGKILL");
      }
      await exited;
      end();
    },
    kill: async () => {
      if (running()) proc.kill("SIGKILL");
      await exited;
      end();
    },
  };
}

/** Poll `ready` until it resolves; fail at once if the process exits, or after upServiceReadyTimeoutMs, with its log's last lines. */
async function waitFor(service: ServiceProcess, logFile: string, ready: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + limits.upServiceReadyTimeoutMs;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    if (service.proc.exitCode !== null || service.proc.signalCode !== null) {
      throw new MictlanxError("unavailable", `${service.name} exited (${service.proc.exitCode ?? service.proc.signalCode}) before it was ready; ${logFile} ends:\n${logTail(logFile).join("\n")}`);
    }
    try {
      await ready();
      return;
    } catch (error) {
      last = (error as Error).message;
    }
    await Bun.sleep(pollMs);
  }
  throw new MictlanxError("timeout", `${service.name} at ${service.address} was not ready within ${limits.upServiceReadyTimeoutMs} ms (last: ${last}); see ${logFile}`);
}

/**
 * A shell that stops the service (by its pid) once this process is gone: checks every second,
 * then the service's own stop signal, and SIGKILL if it is still there after the grace.
 */
function startWatchdog(pid: number, stopSignal: "SIGINT" | "SIGTERM"): Bun.Subprocess {
  const signal = stopSignal === "SIGINT" ? "INT" : "TERM";
  const graceS = Math.ceil(limits.upServiceStopGraceMs / 1000);
  const script = `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${pid} 2>/dev/null; do sleep 1; done; kill -${signal} ${pid} 2>/dev/null; i=0; while kill -0 ${pid} 2>/dev/null && [ $i -lt ${graceS} ]; do sleep 1; i=$((i+1)); done; kill -9 ${pid} 2>/dev/null`;
  return Bun.spawn(["/bin/sh", "-c", script], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
}

/** A port the OS says is free now (another process may take it first: the start then fails and says so). */
export function freePort(): Promise<number> {
  return new Promise((resolveWith, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolveWith(port) : reject(new Error("the OS gave no port"))));
    });
  });
}
