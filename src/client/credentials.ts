// Where a client finds its access key and the VSS's CA, in this order, field by field:
//   1. --access-key / --secret-key / --ca
//   2. MICTLANX_ACCESS_KEY / MICTLANX_SECRET_KEY / MICTLANX_CA
//   3. --credentials FILE, else MICTLANX_CREDENTIALS
//   4. ./.mictlanx/credentials.json (what `mictlanx up` writes with its default --data)
// A credentials file is `{ "accessKey", "secretKey", "ca" }`, `ca` a path (relative to the
// file's directory) or null. Nothing found anywhere: the client speaks plain TCP, for a VSS
// started with --insecure.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../lib/errors.ts";
import { defaults, nonEmpty } from "../lib/defaults.ts";
import { readCredentialsFile } from "../lib/credentials-file.ts";
import type { ClientSecurity } from "../net/connection.ts";
import { TlsSource } from "../net/tls.ts";

export interface CredentialFlags {
  accessKey?: string | undefined;
  secretKey?: string | undefined;
  ca?: string | undefined;
  credentials?: string | undefined;
}

export interface Credentials {
  accessKey: string;
  secretKey: string;
  /** The CA's PEM text or a path to it. */
  ca: string;
}

/** The default file: where `mictlanx up` (default --data) writes its admin key. */
export function defaultCredentialsPath(cwd = process.cwd()): string {
  return join(cwd, defaults.upDataDir, "credentials.json");
}

/** The credentials to use, or undefined for none (a plain, --insecure VSS). */
export function findCredentials(flags: CredentialFlags = {}, env: Record<string, string | undefined> = process.env, cwd = process.cwd()): Credentials | undefined {
  let accessKey = nonEmpty(flags.accessKey) ?? nonEmpty(env.MICTLANX_ACCESS_KEY);
  let secretKey = nonEmpty(flags.secretKey) ?? nonEmpty(env.MICTLANX_SECRET_KEY);
  let ca = nonEmpty(flags.ca) ?? nonEmpty(env.MICTLANX_CA);
  if (accessKey === undefined || secretKey === undefined || ca === undefined) {
    const named = nonEmpty(flags.credentials) ?? nonEmpty(env.MICTLANX_CREDENTIALS);
    const path = named ?? defaultCredentialsPath(cwd);
    const file = named !== undefined || existsSync(path) ? readCredentialsFile(path) : undefined;
    accessKey ??= file?.accessKey;
    secretKey ??= file?.secretKey;
    ca ??= file?.ca;
  }
  if (accessKey === undefined && secretKey === undefined && ca === undefined) return undefined;
  if (accessKey === undefined || secretKey === undefined) {
    throw new UsageError("an access key needs both its id and its secret: set MICTLANX_ACCESS_KEY and MICTLANX_SECRET_KEY (or --access-key and --secret-key)");
  }
  if (ca === undefined) throw new UsageError("no CA to check the VSS's certificates with: set MICTLANX_CA (or --ca) to the VSS's ca.crt");
  return { accessKey, secretKey, ca };
}

/** TLS and the access key for a client's connections, or undefined without credentials (plain TCP). */
export function clientSecurity(credentials: Credentials | undefined): ClientSecurity | undefined {
  if (!credentials) return undefined;
  const tls = credentials.ca.includes("-----BEGIN") ? new TlsSource({ caPem: credentials.ca }) : new TlsSource({ caPath: credentials.ca });
  return { tls, credentials: { accessKey: credentials.accessKey, secretKey: credentials.secretKey } };
}
