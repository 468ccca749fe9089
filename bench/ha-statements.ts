// Where a put's time goes on the PostgreSQL catalog: the statements the SPMs send per 4 KiB put.
// Starts a `--ha` VSS (PostgreSQL, etcd, 3 SPMs, TLS on), turns on PostgreSQL's log_statement,
// runs `mictlanx bench --op put --count N`, and counts the statements logged meanwhile, most
// frequent first (each one is a round trip, most of them made under the writer lock).
//   bun bench/ha-statements.ts [N=400]         (after npm run build)
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import { startLocalVss } from "../src/local/vss.ts";

const binary = process.env.MICTLANX_BIN ?? join(import.meta.dir, "..", "dist", "mictlanx");
const count = Number(process.argv[2] ?? "400");
const work = mkdtempSync(join(tmpdir(), "mictlanx-ha-statements-"));
chmodSync(work, 0o711); // PostgreSQL runs as an unprivileged user when this is root
try {
  const vss = await startLocalVss({ dir: work, peers: 3, routers: 1, basePort: 0, command: [binary], ha: true });
  try {
    const sql = new SQL({ url: vss.services!.catalogUrl, max: 1 });
    await sql.unsafe("ALTER SYSTEM SET log_statement = 'all'");
    await sql.unsafe("SELECT pg_reload_conf()");
    await Bun.sleep(500);
    const logFile = join(work, "logs", "postgres.log");
    const start = readFileSync(logFile, "utf8").length;
    const env = { ...process.env, MICTLANX_CREDENTIALS: vss.security.insecure ? "" : vss.security.credentialsPath };
    const args = ["bench", "--router", vss.routers[0]!.address, "--json", "--keep", "--size", "4KiB", "--op", "put", "--count", String(count), "--concurrency", "16", "--rf", "2"];
    const proc = Bun.spawn([binary, ...args], { stdout: "pipe", stderr: "inherit", env });
    console.log((await new Response(proc.stdout).text()).trim());
    await proc.exited;
    await sql.close();
    const lines = readFileSync(logFile, "utf8").slice(start).split("\n").filter((line) => /LOG:\s+(statement|execute)/.test(line));
    console.log(`${lines.length} statements for ${count} puts: ${(lines.length / count).toFixed(1)} per put`);
    const kinds = new Map<string, number>();
    for (const line of lines) {
      const text = line.replace(/^.*?(statement|execute [^:]*): /, "").replace(/\s+/g, " ").slice(0, 100);
      kinds.set(text, (kinds.get(text) ?? 0) + 1);
    }
    for (const [text, n] of [...kinds].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${String(n).padStart(6)}  ${text}`);
  } finally {
    await vss.stop();
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
