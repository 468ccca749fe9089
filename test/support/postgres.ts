// A real PostgreSQL for tests, from Debian's `postgresql` package: one server per test file (a
// temp data dir, a free loopback port, its unix socket in the temp dir, fsync on), a fresh
// database per test. PostgreSQL refuses to run as root, so when the tests run as root the
// server runs as an unprivileged user (`mictlanx-pg`, made with useradd when missing, else
// `nobody`) through setpriv, which execs in place: the pid the test holds is the postmaster's,
// so a stop or a kill reaches the server itself. Cleanup stops it (pg_ctl -m immediate, then
// kill -9 by pid) and removes the dir, also when a start fails halfway.
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";

const serverUser = "mictlanx-pg";
const startTimeoutMs = 30_000;

export type PostgresBin = { dir: string; initdb: string; postgres: string; pgCtl: string };

/** initdb, postgres and pg_ctl (and pg_dump beside them) from PATH or /usr/lib/postgresql/N/bin (the newest N); undefined when not installed. */
export function findPostgres(): PostgresBin | undefined {
  const onPath = Bun.which("initdb");
  const real = onPath === null ? undefined : realpathSync(onPath); // a link in /usr/local/bin: the bin dir it points into has pg_dump too
  const dirs = real === undefined ? [] : [real.slice(0, real.lastIndexOf("/"))];
  const debian = "/usr/lib/postgresql";
  if (existsSync(debian)) {
    const versions = readdirSync(debian).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a));
    dirs.push(...versions.map((version) => join(debian, version, "bin")));
  }
  for (const dir of dirs) {
    const bin = { dir, initdb: join(dir, "initdb"), postgres: join(dir, "postgres"), pgCtl: join(dir, "pg_ctl") };
    if (existsSync(bin.initdb) && existsSync(bin.postgres) && existsSync(bin.pgCtl)) return bin;
  }
  return undefined;
}

/** Why PostgreSQL tests cannot run here, or undefined when they can. */
export function postgresMissing(): string | undefined {
  return findPostgres() === undefined ? "PostgreSQL is not installed (Debian: apt-get install postgresql); the postgres engine's tests are skipped" : undefined;
}

type RunAs = { uid: number; gid: number; name: string } | undefined;

/** The user the server runs as: undefined (this one) unless we are root. */
function serverAccount(): RunAs {
  if (process.getuid?.() !== 0) return undefined;
  if (lookUp(serverUser) === undefined) Bun.spawnSync(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", serverUser], { stderr: "ignore" });
  return lookUp(serverUser) ?? lookUp("nobody");
}

function lookUp(name: string): RunAs {
  const uid = Bun.spawnSync(["id", "-u", name], { stderr: "ignore" });
  const gid = Bun.spawnSync(["id", "-g", name], { stderr: "ignore" });
  if (uid.exitCode !== 0 || gid.exitCode !== 0) return undefined;
  return { name, uid: Number(uid.stdout.toString().trim()), gid: Number(gid.stdout.toString().trim()) };
}

function asAccount(account: RunAs, command: string[]): string[] {
  return account === undefined ? command : ["setpriv", `--reuid=${account.uid}`, `--regid=${account.gid}`, "--clear-groups", "--", ...command];
}

async function freeLoopbackPort(): Promise<number> {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:PORT/DB for a database of this server. */
  url(database: string): string;
  port: number;
  dir: string;
  /** A new empty database (UTF8, C collation), or a copy of `template`; its URL. */
  createDatabase(name?: string, template?: string): Promise<string>;
  /** Stop the server at once (pg_ctl -m immediate): connections to it fail until `start`. */
  stop(): Promise<void>;
  /** Start it again on the same port and data dir; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stop it and remove its dir. */
  cleanup(): Promise<void>;
}

let databases = 0;

/** Start a PostgreSQL server in a temp dir (see the header). Throws when it is not installed. */
export async function startTestPostgres(label: string): Promise<TestPostgres> {
  const bin = findPostgres();
  if (bin === undefined) throw new Error(postgresMissing());
  const account = serverAccount();
  const dir = mkdtempSync(join(tmpdir(), `mictlanx-pg-${label}-`));
  const data = join(dir, "data");
  const log = join(dir, "server.log");
  let proc: ReturnType<typeof Bun.spawn> | undefined;
  let port = 0;
  const admin = () => new SQL({ url: `postgres://postgres@127.0.0.1:${port}/postgres`, max: 1, connectionTimeout: 5 });
  const stopNow = async () => {
    if (proc === undefined) return;
    const running = proc;
    proc = undefined;
    await Bun.spawn(asAccount(account, [bin.pgCtl, "stop", "-D", data, "-m", "immediate", "-w", "-t", "10"]), { stdout: "ignore", stderr: "ignore" }).exited;
    if (running.exitCode === null) running.kill(9);
    await running.exited;
  };
  const start = async () => {
    proc = Bun.spawn(asAccount(account, [bin.postgres, "-D", data, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "max_connections=200", "-c", "shared_buffers=32MB"]), {
      stdout: "ignore",
      stderr: Bun.file(log), // a file, not a pipe: a pipe nobody reads would stall the server once full
    });
    await waitAccepting(proc, port, log, admin);
  };
  try {
    if (account !== undefined) chownSync(dir, account.uid, account.gid);
    chmodSync(dir, 0o755);
    // --no-sync: initdb's own final flush only; the server runs with fsync on
    const init = Bun.spawn(asAccount(account, [bin.initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]), { stdout: "ignore", stderr: "pipe" });
    const [initCode, initErrors] = await Promise.all([init.exited, new Response(init.stderr).text()]);
    if (initCode !== 0) throw new Error(`initdb failed: ${initErrors}`);
    port = await freeLoopbackPort();
    await start();
  } catch (error) {
    await stopNow();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const url = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;
  return {
    url,
    port,
    dir,
    async createDatabase(name = `t_${process.pid}_${(databases += 1)}`, template?: string) {
      const sql = admin();
      try {
        const from = template === undefined ? "ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0" : `TEMPLATE "${template}"`;
        await sql.unsafe(`CREATE DATABASE "${name}" ${from}`);
      } finally {
        await sql.close();
      }
      return url(name);
    },
    stop: stopNow,
    start,
    async cleanup() {
      await stopNow();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Until the server answers a query; its stderr in the error when it exits or takes too long. */
async function waitAccepting(proc: ReturnType<typeof Bun.spawn>, port: number, log: string, admin: () => SQL): Promise<void> {
  const deadline = Date.now() + startTimeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) {
      throw new Error(`postgres on port ${port} exited with ${proc.exitCode}: ${logTail(log)}`);
    }
    const sql = admin();
    try {
      await sql`SELECT 1`;
      return;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    } finally {
      await sql.close();
    }
    await Bun.sleep(50);
  }
  proc.kill(9);
  throw new Error(`postgres on port ${port} did not accept connections in ${startTimeoutMs} ms: ${last}; ${logTail(log)}`);
}

function logTail(log: string): string {
  return existsSync(log) ? readFileSync(log, "utf8").slice(-2000) : "(no server log)";
}

