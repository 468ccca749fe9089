// Which engine a catalog URL names, and opening it as a CatalogStore (api.ts):
//
//   sqlite:DIR                  bun:sqlite, the file DIR/catalog.sqlite (the default: DIR is the
//                               SPM's --data); secrets.key beside it unless told otherwise
//   postgres://HOST:PORT/DB     PostgreSQL through Bun.sql (postgresql:// too); the URL may carry
//                               user, password and Bun.sql's query options (sslmode, …); secrets.key
//                               must be given: it lives beside the SPM's data dir, not in the database
//
// Anything else is a usage error that shows both forms.
import { join, resolve } from "node:path";
import { UsageError } from "../lib/errors.ts";
import type { CatalogStore } from "./api.ts";
import { secretsKeyFile } from "./catalog.ts";
import { PostgresStore, type PostgresStoreOptions } from "./postgres/store.ts";
import { redactedLocation } from "./postgres/db.ts";
import { SqliteStore } from "./sqlite-store.ts";

/** The catalog's file in a sqlite:DIR. */
export const sqliteCatalogFile = "catalog.sqlite";

export type CatalogUrl = { engine: "sqlite"; dir: string; path: string } | { engine: "postgres"; url: string; location: string };

const usage = "a catalog is sqlite:DIR (the SPM's data dir, the default) or postgres://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE";

/** What `text` names; UsageError (saying both forms) when it is neither. */
export function parseCatalogUrl(text: string): CatalogUrl {
  if (text.startsWith("sqlite:")) {
    const rest = text.slice("sqlite:".length);
    const dir = rest.startsWith("//") ? rest.slice(2) : rest; // sqlite:///abs/dir as well as sqlite:/abs/dir and sqlite:rel/dir
    if (dir === "") throw new UsageError(`"${text}" names no directory; ${usage}`);
    const absolute = resolve(dir);
    return { engine: "sqlite", dir: absolute, path: join(absolute, sqliteCatalogFile) };
  }
  if (/^postgres(ql)?:\/\//.test(text)) {
    let parsed: URL;
    try {
      parsed = new URL(text.replace(/^postgresql:/, "postgres:"));
    } catch {
      throw new UsageError(`"${redactedGuess(text)}" is not a URL; ${usage}`);
    }
    if (parsed.hostname === "") throw new UsageError(`${redactedLocation(parsed.href)} names no host; ${usage}`);
    if (parsed.pathname.length <= 1) throw new UsageError(`${redactedLocation(parsed.href)} names no database; ${usage}`);
    return { engine: "postgres", url: parsed.href, location: redactedLocation(parsed.href) };
  }
  throw new UsageError(`"${redactedGuess(text)}" is not a catalog this build knows; ${usage}`);
}

/** A text that failed to parse, without anything that looks like a password (user:password@). */
function redactedGuess(text: string): string {
  return text.replace(/\/\/([^/@:]*):[^/@]*@/, "//$1:…@");
}

export interface OpenCatalogOptions {
  /** The master key sealing access keys' secrets: default DIR/secrets.key for sqlite; required for postgres. */
  secretsKeyPath?: string;
  /** PostgreSQL's pool and timeouts (default: limits.catalogPostgres*). */
  postgres?: Omit<PostgresStoreOptions, "secretsKeyPath">;
}

/** Open (creating or migrating as needed) the catalog `url` names. */
export async function openCatalogStore(url: string, options: OpenCatalogOptions = {}): Promise<CatalogStore> {
  const target = parseCatalogUrl(url);
  if (target.engine === "sqlite") {
    return SqliteStore.open(target.path, { secretsKeyPath: options.secretsKeyPath ?? join(target.dir, secretsKeyFile) });
  }
  if (options.secretsKeyPath === undefined) {
    throw new UsageError(`the catalog at ${target.location} needs a secrets.key: it lives beside the SPM's data dir (--data DIR: DIR/${secretsKeyFile}), the same file for every SPM sharing the catalog`);
  }
  return PostgresStore.open(target.url, { ...options.postgres, secretsKeyPath: options.secretsKeyPath });
}
