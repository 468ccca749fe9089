// `mictlanx catalog backup FILE`: a consistent copy of a SQLite catalog, taken while the SPM
// runs and writes, and the secrets.key its sealed access-key secrets need (docs/formats.md).
//
// How: `VACUUM INTO` on a read-only connection of its own. The statement reads the whole
// catalog inside one read transaction, so the copy is the catalog as of one commit: under WAL
// the SPM's writers go on meanwhile (they are never blocked by a reader; only the WAL's
// checkpoint waits behind the snapshot, so the WAL grows for as long as the copy takes). Why not
// `db.serialize()`: it is as consistent, but builds the whole catalog in this process's memory
// (gigabytes at 10^7 balls) before a byte is written; VACUUM INTO streams page by page and
// writes a compacted file. bun:sqlite has no sqlite3_backup API.
//
// Durability and atomicity: SQLite does not fsync what VACUUM INTO writes, so the copy is made
// under a temporary name beside FILE, checked (PRAGMA quick_check, its schema version, its
// counts), fsynced and renamed onto FILE, then the directory fsynced. The key goes first, to
// FILE.secrets.key the same way (mode 0600), so FILE never exists without the key it needs.
//
// secrets.key: the catalog keeps access keys' secrets sealed under it (secrets.ts). A backup of
// a catalog that holds keys is refused when the key is missing or is not the one they were
// sealed with: it could not be opened. `withoutSecretsKey` leaves it out on purpose (the key is
// kept apart, say in a vault), and the result says so and what must be kept.
import { Database } from "bun:sqlite";
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { IncompatibleError, MictlanxError, UsageError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { writeFileDurable } from "../lib/durable-file.ts";
import { secretsKeyFile } from "./catalog.ts";
import { checkSchemaVersion } from "./schema.ts";
import { masterKeyBytes, matchesCheck } from "./secrets.ts";

/** The file a backup's secrets.key goes to, beside it. */
export const backupKeySuffix = ".secrets.key";

export interface BackupOptions {
  /** The catalog to copy (DIR/catalog.sqlite of an SPM's --data DIR). */
  catalogPath: string;
  /** Where the copy goes. */
  file: string;
  /** Replace FILE (and FILE.secrets.key) if they exist. */
  force?: boolean;
  /** Do not copy secrets.key: the user keeps it apart. */
  withoutSecretsKey?: boolean;
}

export interface BackupResult {
  file: string;
  bytes: number;
  schemaVersion: number;
  balls: number;
  buckets: number;
  accessKeys: number;
  /** Where the key went, or why none did ("not copied": keep `keptAt`). */
  secretsKey: { copiedTo: string } | { notCopied: true; keepFrom: string } | { none: true };
  tookMs: number;
}

interface CatalogFacts {
  schemaVersion: number;
  balls: number;
  buckets: number;
  accessKeys: number;
  /** meta `secrets_key_check`: the master key's check value, when keys were ever sealed. */
  keyCheck: string | undefined;
}

/** Copy the catalog at `catalogPath` to `file` (see the top of this file). */
export function backupCatalog(options: BackupOptions): BackupResult {
  const startedMs = performance.now();
  const file = resolve(options.file);
  const keyTarget = `${file}${backupKeySuffix}`;
  refuseTargets(file, keyTarget, options.force === true);
  const sourceKey = join(dirname(options.catalogPath), secretsKeyFile);
  const temporary = `${file}.tmp-${process.pid}`;
  try {
    const facts = copySnapshot(options.catalogPath, temporary);
    const key = keyToCopy(facts, sourceKey, options.withoutSecretsKey === true);
    if (key) writeFileDurable(keyTarget, key, { mode: 0o600 });
    syncFile(temporary);
    renameSync(temporary, file);
    syncFile(dirname(file));
    const secretsKey: BackupResult["secretsKey"] = key ? { copiedTo: keyTarget } : options.withoutSecretsKey ? { notCopied: true, keepFrom: sourceKey } : { none: true };
    const { balls, buckets, accessKeys, schemaVersion } = facts;
    return { file, bytes: statSync(file).size, schemaVersion, balls, buckets, accessKeys, secretsKey, tookMs: Math.round(performance.now() - startedMs) };
  } finally {
    rmSync(temporary, { force: true });
  }
}

function refuseTargets(file: string, keyTarget: string, force: boolean): void {
  if (!existsSync(dirname(file))) throw new UsageError(`${dirname(file)} does not exist: make the directory the backup goes to first`);
  if (force) return;
  for (const path of [file, keyTarget]) {
    if (existsSync(path)) throw new UsageError(`${path} exists; choose another FILE, or pass --force to replace it`);
  }
}

/** VACUUM INTO `temporary` from a read-only connection, then what the copy holds, read from the copy. */
function copySnapshot(catalogPath: string, temporary: string): CatalogFacts {
  if (!existsSync(catalogPath)) throw new UsageError(`no catalog at ${catalogPath}: give the SPM's data directory (--data-dir DIR, the SPM's --data; mictlanx up puts it at DIR/spm)`);
  rmSync(temporary, { force: true });
  const source = new Database(catalogPath, { readonly: true });
  try {
    source.run(`PRAGMA busy_timeout = ${limits.catalogBusyTimeoutMs}`);
    checkSchemaVersion(source, catalogPath);
    source.run("VACUUM INTO ?", [temporary]);
  } finally {
    source.close();
  }
  return factsOf(temporary);
}

/** The copy checked as a whole (quick_check) and counted, before it may replace FILE. */
function factsOf(path: string): CatalogFacts {
  const db = new Database(path, { readonly: true });
  try {
    const check = db.query<{ quick_check: string }, []>("PRAGMA quick_check").all();
    if (check.length !== 1 || check[0]?.quick_check !== "ok") {
      throw new MictlanxError("corrupt", `the copy failed SQLite's check (${check.map((row) => row.quick_check).slice(0, 3).join("; ")}); the catalog may be damaged: run PRAGMA integrity_check on it`);
    }
    const schemaVersion = checkSchemaVersion(db, path);
    if (schemaVersion === undefined) throw new UsageError(`the catalog is empty (no tables): nothing to back up`);
    const hasKeys = db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'access_keys'").get() !== null;
    const totals = db.query<{ balls: number; buckets: number }, []>("SELECT balls, buckets FROM totals WHERE id = 0").get();
    const keys = hasKeys ? (db.query<{ n: number }, []>("SELECT count(*) AS n FROM access_keys").get()?.n ?? 0) : 0;
    const keyCheck = db.query<{ value: string }, []>("SELECT value FROM meta WHERE key = 'secrets_key_check'").get()?.value;
    return { schemaVersion, balls: totals?.balls ?? 0, buckets: totals?.buckets ?? 0, accessKeys: keys, keyCheck };
  } finally {
    db.close();
  }
}

/**
 * The secrets.key to copy beside the backup, or none. A catalog holding access keys needs the
 * key they were sealed with: missing or another one is refused, unless it is left out on purpose.
 */
function keyToCopy(facts: CatalogFacts, sourceKey: string, withoutSecretsKey: boolean): Uint8Array | undefined {
  if (withoutSecretsKey) return undefined;
  if (!existsSync(sourceKey)) {
    if (facts.accessKeys === 0) return undefined; // nothing sealed: a new key is made when the backup is opened
    throw new MictlanxError(
      "unavailable",
      `the catalog holds ${facts.accessKeys} access keys sealed under ${sourceKey}, which is missing: a backup without it could not be opened. Restore secrets.key there, or pass --no-secrets-key if you keep it elsewhere`,
    );
  }
  const key = new Uint8Array(readFileSync(sourceKey));
  if (facts.accessKeys > 0 && (key.byteLength !== masterKeyBytes || (facts.keyCheck !== undefined && !matchesCheck(key, facts.keyCheck)))) {
    throw new IncompatibleError(`${sourceKey} is not the key this catalog's ${facts.accessKeys} access keys were sealed with: a backup with it could not be opened; put the catalog's own secrets.key back first`);
  }
  return key;
}

/** fsync a file or a directory. */
function syncFile(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
