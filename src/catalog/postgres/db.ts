// How the PostgreSQL engine talks to its server: queries through Bun.sql (built into Bun, no
// driver), rows converted to the shapes the sqlite engine's rows have, and the server's
// failures as typed errors that name the database.
//
// Numbers: Bun returns int8 (BIGINT, count(*)) and numeric (sum) as strings, to lose no digit.
// Every number the catalog keeps is a safe integer (validate.ts bounds them on the way in), so
// `all`/`one` turn those columns into numbers, asserting each is safe: a row never carries a
// string where the sqlite engine's carries a number, and the shared converters (rows.ts) work
// on both.
import type { SQL } from "bun";
import { assert } from "../../lib/assert.ts";
import { BadRequestError, FullError, MictlanxError, UnavailableError } from "../../lib/errors.ts";
import { limits } from "../../lib/limits.ts";

/** Any Bun.sql client: the pool, a transaction's, a savepoint's. */
export type Db = SQL;
type Query = SQL.Query<unknown>;

const int8Oid = 20;
const numericOid = 1700;

/** The rows of a query, int8 and numeric columns as numbers. */
export async function all<Row>(query: Query): Promise<Row[]> {
  const result = (await query) as Array<Record<string, unknown>> & SQL.ResultMetadata;
  const big = (result.columns ?? []).filter((column) => column.type === int8Oid || column.type === numericOid).map((column) => column.name);
  if (big.length > 0) for (const row of result) for (const name of big) row[name] = toNumber(row[name], name);
  return result as unknown as Row[];
}

/** The first row, or undefined when there is none. */
export async function one<Row>(query: Query): Promise<Row | undefined> {
  return (await all<Row>(query))[0];
}

/** How many rows a write changed. */
export async function run(query: Query): Promise<number> {
  const result = (await query) as unknown as SQL.ResultMetadata;
  return result.affectedRows;
}

function toNumber(value: unknown, column: string): unknown {
  if (value === null || typeof value === "number") return value;
  const number = Number(value);
  assert(Number.isSafeInteger(number), `column ${column} holds ${String(value)}, not a safe integer`);
  return number;
}

/**
 * Advisory lock keys (pg_advisory_xact_lock): every write transaction takes `writer`, so writes
 * run one at a time as they do on sqlite (BEGIN IMMEDIATE) and a read-then-write inside one sees
 * nothing change under it; `schema` serializes the migrations of SPMs starting together.
 */
export const lockKeys = { writer: 0x6d78_0001, schema: 0x6d78_0002 } as const;

/** SQLSTATEs that mean "not now": the server is going away, out of room or refusing, or a wait ran out. */
const unavailableStates: Record<string, string> = {
  "57014": `a statement ran past the statement timeout (${limits.catalogPostgresStatementTimeoutMs} ms)`,
  "55P03": `a lock was held elsewhere for more than ${limits.catalogPostgresLockTimeoutMs} ms (another SPM writing to this catalog, or a tool holding it)`,
  "57P01": "the server is shutting down",
  "57P02": "the server crashed and is restarting",
  "57P03": "the server is starting up or shutting down",
  "25006": "the server takes no writes (a standby, or default_transaction_read_only)",
  "40001": "a transaction could not be serialized; retry",
  "40P01": "a deadlock was detected; retry",
  "53300": "the server has no connection slot left (max_connections)",
  "53200": "the server is out of memory",
  "58030": "the server had an I/O error",
};

/**
 * A failure of the server or the way to it, as a typed error that names the catalog; anything
 * else (a bug, a constraint the checks should have caught) as thrown.
 */
export function storageError(location: string, error: unknown): unknown {
  if (error instanceof MictlanxError || !(error instanceof Error)) return error;
  const { code, errno } = error as Error & { code?: string; errno?: string };
  if (typeof code !== "string" || !code.startsWith("ERR_POSTGRES")) return error;
  if (errno === "53100") return new FullError(`the catalog's disk is full (${location}: ${error.message}); free some space on the database server, and the SPM takes writes again as soon as there is room`);
  if (errno === "22021" || errno === "22P05") return new BadRequestError(`the catalog at ${location} cannot store that text (${error.message}); PostgreSQL text holds no NUL character`);
  const known = errno === undefined ? undefined : unavailableStates[errno];
  if (known !== undefined) return new UnavailableError(`the catalog at ${location} could not do it: ${known} (${error.message}); the SPM retries`, { cause: error });
  if (errno === "28P01" || errno === "28000") return new UnavailableError(`the catalog at ${location} refused the login (${error.message}); check the user and password (the URL, or PGPASSWORD) and pg_hba.conf`, { cause: error });
  if (errno === "3D000") return new UnavailableError(`the catalog at ${location} could not be reached: ${error.message}; create it (createdb --encoding=UTF8 --template=template0 NAME)`, { cause: error });
  if (errno?.startsWith("08") === true || (code !== "ERR_POSTGRES_SERVER_ERROR" && connectionCode.test(code))) {
    return new UnavailableError(`the catalog at ${location} could not be reached: ${error.message} (${code}); check that PostgreSQL runs there and takes connections`, { cause: error });
  }
  return error;
}

/** Bun's own codes for a connection that failed, closed or timed out (not a query of ours that was wrong). */
const connectionCode = /CONNECTION|TIMEOUT|TLS|SSL|AUTHENTICATION|SOCKET|CLOSED|REFUSED|UNREACHABLE/;

/**
 * `postgres://host:port/db`: the URL without its user, its password and its query string (which
 * can carry a password too): what messages and logs name.
 */
export function redactedLocation(url: string): string {
  const parsed = new URL(url);
  const port = parsed.port === "" ? "5432" : parsed.port;
  return `postgres://${parsed.hostname}:${port}${parsed.pathname}`;
}
