// `mictlanx catalog backup FILE`: flags in, src/catalog/backup.ts does the work, a summary out.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { backupCatalog, type BackupResult } from "../catalog/index.ts";
import { UsageError } from "../lib/errors.ts";
import { formatBytes } from "../lib/size.ts";
import { printable, terminalJson } from "../lib/names.ts";

export interface CatalogBackupFlags {
  catalog?: string;
  dataDir?: string;
  force?: boolean;
  /** commander's --no-secrets-key: false when given. */
  secretsKey?: boolean;
  json?: boolean;
}

/** Where `mictlanx up` keeps its SPM's data, the default when neither --catalog nor --data-dir is given. */
const upSpmDir = join(".mictlanx", "spm");

export function catalogBackupCommand(file: string, flags: CatalogBackupFlags): void {
  const dir = catalogDir(flags);
  const result = backupCatalog({ catalogPath: join(dir, "catalog.sqlite"), file, force: flags.force === true, withoutSecretsKey: flags.secretsKey === false });
  process.stdout.write(flags.json ? `${terminalJson(result)}\n` : describe(result));
}

/** The SPM's data directory from --catalog sqlite:DIR or --data-dir DIR (not both), else up's. */
function catalogDir(flags: CatalogBackupFlags): string {
  if (flags.catalog !== undefined && flags.dataDir !== undefined) throw new UsageError("give --catalog or --data-dir, not both");
  if (flags.catalog !== undefined) {
    if (/^postgres(ql)?:\/\//.test(flags.catalog)) {
      throw new UsageError("a PostgreSQL catalog is backed up with PostgreSQL's own pg_dump (pg_dump --format=custom --file=FILE URL), which is consistent while the SPMs write: see docs/formats.md");
    }
    const match = /^sqlite:(.+)$/.exec(flags.catalog);
    if (!match) throw new UsageError(`--catalog ${flags.catalog}: expected sqlite:DIR (the SPM's --data directory)`);
    return match[1]!;
  }
  if (flags.dataDir !== undefined) return flags.dataDir;
  if (existsSync(upSpmDir)) return upSpmDir;
  throw new UsageError(`no catalog given and no ${upSpmDir} here: pass --data-dir DIR (the SPM's --data) or --catalog sqlite:DIR`);
}

function describe(result: BackupResult): string {
  const what = `schema ${result.schemaVersion}: ${result.balls} balls in ${result.buckets} buckets, ${result.accessKeys} access keys`;
  const lines = [`backed up the catalog (${what}) to ${printable(result.file)} (${formatBytes(result.bytes)}) in ${result.tookMs} ms`];
  const key = result.secretsKey;
  if ("copiedTo" in key) lines.push(`its secrets.key went to ${printable(key.copiedTo)} (mode 0600): keep the two together; whoever holds both holds every access key's secret`);
  else if ("notCopied" in key) lines.push(`secrets.key was NOT copied (--no-secrets-key): the backup's ${result.accessKeys} access keys open only with ${printable(key.keepFrom)}; keep it safe apart`);
  else lines.push("the catalog holds no access keys, so there is no secrets.key to keep with it");
  lines.push("restore: stop the SPM, remove DIR/catalog.sqlite-wal and -shm, copy FILE to DIR/catalog.sqlite and FILE.secrets.key to DIR/secrets.key (docs/formats.md)");
  return `${lines.join("\n")}\n`;
}
