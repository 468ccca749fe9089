// A local VSS's security, made on its first start under DIR (files 0600 where secret):
//   DIR/certs/ca.crt, ca.key       the VSS's CA (src/certs)
//   DIR/certs/<id>.crt, <id>.key   one certificate per role: spm, router-N, peer-N
//   DIR/credentials.json           an admin key { accessKey, secretKey, ca }, which the SPM imports
//                                  when it creates its catalog, and the CLI finds by itself
// A certificate that expires within certificateExpiryWarnMs is renewed at start. With
// `insecure`, none of this: every role runs with --insecure and says so.
import { existsSync, readFileSync } from "node:fs";
import { readCredentialsFile } from "../lib/credentials-file.ts";
import { join } from "node:path";
import { initCa, issueNodeCertificate, nodeFiles } from "../certs/certs.ts";
import { writeFileDurable } from "../lib/durable-file.ts";
import { limits } from "../lib/limits.ts";
import { UsageError } from "../lib/errors.ts";
import { newAccessKeyId, newSecretKey } from "../lib/access-keys.ts";
import type { NodeRole } from "../lib/node-identity.ts";
import type { ClientSecurity } from "../net/connection.ts";
import { TlsSource } from "../net/tls.ts";

export interface LocalCredentials {
  accessKey: string;
  secretKey: string;
  ca: string;
}

export type LocalSecurity =
  | { insecure: true }
  | {
      insecure: false;
      certsDir: string;
      credentialsPath: string;
      credentials: LocalCredentials;
      /** A role's --tls-* flags, its certificate issued first if it has none (or one expiring). */
      roleArgs(role: NodeRole, id: string): Promise<string[]>;
      /** What a client of this VSS connects with (the admin key). */
      clientSecurity(): ClientSecurity;
    };

/** The host names local certificates are issued for: what a local VSS listens on. */
const localHosts = ["127.0.0.1", "localhost"];

/** Where a VSS's CA, certificates and admin key live when not under its own DIR (tests share one set across their VSSs). */
export interface SharedSecurity {
  certsDir: string;
  credentialsPath: string;
}

export async function prepareLocalSecurity(dir: string, insecure: boolean, shared?: SharedSecurity): Promise<LocalSecurity> {
  if (insecure) return { insecure: true };
  const certsDir = shared?.certsDir ?? join(dir, "certs");
  if (!existsSync(join(certsDir, "ca.crt"))) await initCa(certsDir);
  const credentialsPath = shared?.credentialsPath ?? join(dir, "credentials.json");
  const credentials = ensureCredentials(credentialsPath, join(certsDir, "ca.crt"));
  return {
    insecure: false,
    certsDir,
    credentialsPath,
    credentials,
    roleArgs: async (role, id) => {
      await ensureCertificate(certsDir, role, id);
      const files = nodeFiles(certsDir, id);
      return ["--tls-cert", files.certPath, "--tls-key", files.keyPath, "--tls-ca", files.caPath];
    },
    clientSecurity: () => clientSecurityFrom(credentials),
  };
}

/** A client's TLS and key from a credentials file's contents (a CA path is needed: a local VSS always has one). */
export function clientSecurityFrom(credentials: { accessKey: string; secretKey: string; ca?: string | undefined }): ClientSecurity {
  if (credentials.ca === undefined) throw new UsageError("the credentials name no CA (ca); a local VSS with TLS writes one");
  return { tls: new TlsSource({ caPath: credentials.ca }), credentials: { accessKey: credentials.accessKey, secretKey: credentials.secretKey } };
}

/** Issue a role's certificate if it has none, or one that expires soon. */
async function ensureCertificate(certsDir: string, role: NodeRole, id: string): Promise<void> {
  const files = nodeFiles(certsDir, id);
  if (existsSync(files.certPath) && existsSync(files.keyPath)) {
    const { X509Certificate } = await import("node:crypto");
    const notAfterMs = new X509Certificate(readFileSync(files.certPath)).validToDate.getTime();
    if (notAfterMs - Date.now() > limits.certificateExpiryWarnMs) return;
  }
  await issueNodeCertificate({ dir: certsDir, role, id, hosts: localHosts });
}

/** DIR/credentials.json: made once (an admin key), read after. */
function ensureCredentials(path: string, caPath: string): LocalCredentials {
  if (existsSync(path)) {
    const { accessKey, secretKey } = readCredentialsFile(path);
    return { accessKey, secretKey, ca: caPath };
  }
  const credentials = { accessKey: newAccessKeyId(), secretKey: newSecretKey(), ca: caPath };
  writeFileDurable(path, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  return credentials;
}
