// `mictlanx catalog backup`: a copy of the live catalog taken while puts keep committing, by
// the real CLI in its own process, opened as a catalog with the secrets.key it wrote beside it:
// every ball acknowledged before the backup began is in it, with its bytes' checksum, and the
// admin key opens. Refusals: a FILE that exists, a catalog holding keys without its secrets.key,
// a PostgreSQL URL; --no-secrets-key says what must be kept.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Catalog } from "../../src/catalog/index.ts";
import { cli, clientFor, startTestVss, tempDir } from "../support/vss.ts";
import { randomBytes, seededRandom } from "../support/random.ts";
import type { Client } from "../../src/client/client.ts";

const { random, seed } = seededRandom("catalog-backup");
let vss: Awaited<ReturnType<typeof startTestVss>>;
let client: Client;
let out: string;

beforeAll(async () => {
  vss = await startTestVss({ label: "catalog-backup", peers: 2 });
  client = clientFor(vss);
  out = tempDir("catalog-backup-out");
});

afterAll(async () => {
  client?.close();
  await vss?.cleanup();
  if (out && !process.env.MICTLANX_KEEP) rmSync(out, { recursive: true, force: true });
});

const spmDir = () => join(vss.dir, "spm");
const sha256 = (data: Uint8Array) => new Bun.CryptoHasher("sha256").update(data).digest("hex");

/** Puts one small ball after another until stopped; what was acknowledged, in order. */
function writer(): { acknowledged: Array<{ key: string; sha256: string }>; stop(): Promise<void> } {
  const acknowledged: Array<{ key: string; sha256: string }> = [];
  let running = true;
  const loop = (async () => {
    for (let n = 0; running; n += 1) {
      const data = randomBytes(random, 1 + Math.floor(random() * 4_000));
      await client.put("live", `ball-${n}`, data, { rf: 2 });
      acknowledged.push({ key: `ball-${n}`, sha256: sha256(data) });
    }
  })();
  return {
    acknowledged,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

describe(`catalog backup of a running SPM (seed ${seed})`, () => {
  test("taken while puts commit: every ball acknowledged before it began is in the copy, which opens with the key beside it", async () => {
    const puts = writer();
    while (puts.acknowledged.length < 40) await Bun.sleep(20);
    const before = puts.acknowledged.length;
    const file = join(out, "catalog.sqlite");
    const backup = await cli(["catalog", "backup", file, "--data-dir", spmDir(), "--json"]);
    const duringBackup = puts.acknowledged.length;
    while (puts.acknowledged.length < duringBackup + 10) await Bun.sleep(20); // writes go on after it
    await puts.stop();
    expect({ code: backup.code, stderr: backup.stderr }).toEqual({ code: 0, stderr: "" });
    const result = JSON.parse(backup.stdout);
    expect(result).toMatchObject({ file, schemaVersion: 4, secretsKey: { copiedTo: `${file}.secrets.key` } });
    expect(result.balls).toBeGreaterThanOrEqual(before);
    expect(result.balls).toBeLessThanOrEqual(duringBackup);
    console.log(`[catalog-backup] ${before} balls acknowledged before the backup, ${result.balls} in it, ${duringBackup} when it ended; ${result.bytes} bytes in ${result.tookMs} ms`);
    expect(statSync(`${file}.secrets.key`).mode & 0o777).toBe(0o600);

    const copy = Catalog.open(file, { secretsKeyPath: `${file}.secrets.key` });
    try {
      expect(copy.stats().balls).toBe(result.balls);
      for (const ball of puts.acknowledged.slice(0, before)) expect(copy.getBall("live", ball.key)?.checksum).toBe(ball.sha256);
      const admin = vss.security.insecure ? undefined : vss.security.credentials;
      expect(admin).toBeDefined();
      expect(copy.getAccessKey(admin!.accessKey)?.secretKey).toBe(admin!.secretKey);
      expect(result.accessKeys).toBeGreaterThanOrEqual(1);
    } finally {
      copy.close();
    }
    const again = await cli(["catalog", "backup", file, "--data-dir", spmDir()]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("exists; choose another FILE, or pass --force");
    const forced = await cli(["catalog", "backup", file, "--data-dir", spmDir(), "--force"]);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toContain(`its secrets.key went to ${file}.secrets.key (mode 0600): keep the two together`);
  });

  test("a catalog holding keys whose secrets.key is gone is refused; --no-secrets-key names the key to keep", async () => {
    const orphan = join(out, "orphan");
    mkdirSync(orphan);
    cpSync(join(out, "catalog.sqlite"), join(orphan, "catalog.sqlite")); // a catalog with keys, no secrets.key beside it
    const refused = await cli(["catalog", "backup", join(out, "never.sqlite"), "--catalog", `sqlite:${orphan}`]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`access keys sealed under ${join(orphan, "secrets.key")}, which is missing: a backup without it could not be opened`);
    expect(existsSync(join(out, "never.sqlite"))).toBe(false);
    writeFileSync(join(orphan, "secrets.key"), randomBytes(random, 32)); // another catalog's key
    const wrongKey = await cli(["catalog", "backup", join(out, "never.sqlite"), "--catalog", `sqlite:${orphan}`]);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toContain("is not the key this catalog's");
    expect(existsSync(join(out, "never.sqlite"))).toBe(false);
    const without = await cli(["catalog", "backup", join(out, "without.sqlite"), "--data-dir", spmDir(), "--no-secrets-key"]);
    expect(without.code).toBe(0);
    expect(without.stdout).toContain(`secrets.key was NOT copied (--no-secrets-key): the backup's`);
    expect(without.stdout).toContain(join(spmDir(), "secrets.key"));
    expect(existsSync(join(out, "without.sqlite.secrets.key"))).toBe(false);
  });

  test("usage: a PostgreSQL URL points at pg_dump, both flags at once, no catalog there", async () => {
    const postgres = await cli(["catalog", "backup", join(out, "pg.sqlite"), "--catalog", "postgres://spm@db/mictlanx"]);
    expect(postgres.code).toBe(2);
    expect(postgres.stderr).toContain("pg_dump");
    expect((await cli(["catalog", "backup", join(out, "x.sqlite"), "--catalog", `sqlite:${spmDir()}`, "--data-dir", spmDir()])).code).toBe(2);
    const empty = join(out, "empty");
    mkdirSync(empty);
    const nothing = await cli(["catalog", "backup", join(out, "y.sqlite"), "--data-dir", empty]);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain(`no catalog at ${join(empty, "catalog.sqlite")}: give the SPM's data directory`);
  });
});
