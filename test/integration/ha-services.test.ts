// `up --ha`'s PostgreSQL and etcd (src/local/ha-services.ts), real ones from the machine's
// packages: started under a temp DIR on free ports, PostgreSQL as an unprivileged user when this
// runs as root; they answer (a query on the catalog database, a key through etcd's gateway), a
// second start on the same DIR finds the same data, and stop() leaves no process behind.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { findEtcd, findPostgres, freePort, passwdEntry, postgresUser, startHaServices, type HaServices } from "../../src/local/ha-services.ts";
import { EtcdClient } from "../../src/coordination/etcd.ts";
import { alive, tempDir } from "../support/vss.ts";
import { thrown } from "../support/errors.ts";

function missing(): string | undefined {
  try {
    findPostgres();
    findEtcd();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}
const unavailable = missing();
if (unavailable) console.log(`[ha-services] skipped: ${unavailable}`);

const dirs: string[] = [];
afterAll(() => {
  if (!process.env.MICTLANX_KEEP) for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** The real uid a process runs as (/proc/PID/status). */
function uidOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((entry) => entry.startsWith("Uid:"));
  return Number(line?.split(/\s+/)[1]);
}

async function start(dir: string, ports: { postgres: number; etcd: number; etcdPeer: number }): Promise<HaServices> {
  const logsDir = join(dir, "logs");
  mkdirSync(logsDir, { recursive: true });
  return startHaServices({ dir, postgresPort: ports.postgres, etcdPort: ports.etcd, etcdPeerPort: ports.etcdPeer, logsDir });
}

describe("finding the programs", () => {
  test("missing ones are a usage error naming Debian's package", () => {
    const empty = tempDir("ha-find");
    dirs.push(empty);
    const postgres = thrown(() => findPostgres("", join(empty, "postgresql")));
    expect(postgres.code).toBe("usage");
    expect(postgres.message).toContain("apt-get install postgresql");
    const etcd = thrown(() => findEtcd("", join(empty, "etcd")));
    expect(etcd.code).toBe("usage");
    expect(etcd.message).toContain("apt-get install etcd-server");
  });

  test("Debian's layout: the newest /usr/lib/postgresql/N/bin", () => {
    const root = tempDir("ha-debian");
    dirs.push(root);
    for (const version of ["9.6", "13", "15"]) {
      mkdirSync(join(root, version, "bin"), { recursive: true });
      for (const program of ["initdb", "postgres"]) writeFileSync(join(root, version, "bin", program), "");
    }
    expect(findPostgres("", root)).toEqual({ initdb: join(root, "15", "bin", "initdb"), postgres: join(root, "15", "bin", "postgres") });
  });

  test("/etc/passwd entries by name", () => {
    expect(passwdEntry("root")).toEqual({ name: "root", uid: 0, gid: 0 });
    expect(passwdEntry("no-such-user-here")).toBeUndefined();
  });
});

describe.skipIf(unavailable !== undefined)("PostgreSQL and etcd", () => {
  test("start, answer, keep their data across a restart, and leave nothing running when stopped", async () => {
    const dir = tempDir("ha-services");
    dirs.push(dir);
    const ports = { postgres: await freePort(), etcd: await freePort(), etcdPeer: await freePort() };
    let services = await start(dir, ports);
    const pids = [services.postgres.pid, services.etcd.pid];
    try {
      expect(services.catalogUrl).toBe(`postgres://mictlanx@127.0.0.1:${ports.postgres}/mictlanx`);
      expect(services.coordinationUrl).toBe(`etcd://127.0.0.1:${ports.etcd}`);
      // Never root: PostgreSQL refuses it, and the test would not get here.
      const user = postgresUser();
      if (user) {
        expect(uidOf(services.postgres.pid)).toBe(user.uid);
        expect(statSync(join(dir, "postgres")).uid).toBe(user.uid);
        console.log(`[ha-services] PostgreSQL runs as ${user.name} (uid ${user.uid})`);
      }
      const sql = new Bun.SQL({ url: services.catalogUrl, max: 1 });
      await sql.unsafe("CREATE TABLE kept (v text)");
      await sql.unsafe("INSERT INTO kept VALUES ('across a restart')");
      const [who] = await sql.unsafe("SELECT current_user AS name, current_database() AS db");
      expect(who).toEqual({ name: "mictlanx", db: "mictlanx" });
      await sql.close();
      const etcd = new EtcdClient(services.coordinationUrl);
      await etcd.put("/mictlanx/test/key", "value");
      expect((await etcd.range("/mictlanx/test/key")).kvs[0]?.value).toBe("value");

      await services.stop();
      for (const pid of pids) expect(alive(pid)).toBe(false);
      services = await start(dir, ports); // initdb is not run again; etcd keeps its members
      const again = new Bun.SQL({ url: services.catalogUrl, max: 1 });
      expect(await again.unsafe("SELECT v FROM kept")).toEqual([{ v: "across a restart" }]);
      await again.close();
      expect((await new EtcdClient(services.coordinationUrl).range("/mictlanx/test/key")).kvs[0]?.value).toBe("value");
      pids.push(services.postgres.pid, services.etcd.pid);
    } finally {
      await services.stop();
    }
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(existsSync(join(dir, "postgres", "PG_VERSION"))).toBe(true);
  }, 120_000);
});
