// One CA, one admin key and node certificates for every VSS a test process starts (they run
// with TLS and access keys, as users' do), made once in a temp dir removed at exit. The admin
// key's file is put in MICTLANX_CREDENTIALS, so every CLI a test spawns finds it by itself.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prepareLocalSecurity, type SharedSecurity } from "../../src/local/security.ts";
import { TlsSource } from "../../src/net/tls.ts";
import { issueNodeCertificate, nodeFiles } from "../../src/certs/certs.ts";
import type { ClientSecurity } from "../../src/net/connection.ts";
import type { NodeRole } from "../../src/lib/node-identity.ts";

const dir = mkdtempSync(join(tmpdir(), "mictlanx-test-security-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

export const sharedSecurity: SharedSecurity = { certsDir: join(dir, "certs"), credentialsPath: join(dir, "credentials.json") };
const prepared = await prepareLocalSecurity(dir, false, sharedSecurity);
if (prepared.insecure) throw new Error("test security must not be insecure");
process.env.MICTLANX_CREDENTIALS = sharedSecurity.credentialsPath;

/** The admin key and CA, as `new Client({ ...testCredentials })` takes them. */
export const testCredentials = prepared.credentials;

/** TLS and the admin key, for a test's own RpcPool to a router or the SPM. */
export function adminSecurity(): ClientSecurity {
  return prepared.insecure ? assertNever() : prepared.clientSecurity();
}

const issued = new Map<string, Promise<void>>();

/**
 * A node's TLS for a test that calls a role as one of the VSS's nodes would (a peer's ops as
 * the SPM, the SPM's as a router): a certificate for `id` (default `test-<role>`), issued once.
 */
export async function nodeSecurity(role: NodeRole, id = `test-${role}`): Promise<{ security: ClientSecurity; identity: { role: NodeRole; id: string } }> {
  let issuing = issued.get(id);
  if (!issuing) {
    issuing = issueNodeCertificate({ dir: sharedSecurity.certsDir, role, id, hosts: ["127.0.0.1", "localhost"] }).then(() => {});
    issued.set(id, issuing);
  }
  await issuing;
  const files = nodeFiles(sharedSecurity.certsDir, id);
  return { security: { tls: new TlsSource(files) }, identity: { role, id } };
}

/** A role's TLS, for a test that runs the role in its own process (its certificate issued once). */
export async function roleTls(role: NodeRole, id: string): Promise<{ tls: TlsSource }> {
  await tlsArgs(role, id);
  return { tls: new TlsSource(nodeFiles(sharedSecurity.certsDir, id)) };
}

/** A role's --tls-* flags, for a test that starts a role by hand. */
export async function tlsArgs(role: NodeRole, id: string): Promise<string[]> {
  return prepared.insecure ? ["--insecure"] : prepared.roleArgs(role, id);
}

function assertNever(): never {
  throw new Error("unreachable");
}

/** A test's pool as the SPM would call peers (every peer op). */
export const asSpm = await nodeSecurity("spm");
/** A test's pool as a router would call the SPM (its ball ops, chunk.locate, peers.list). */
export const asRouter = await nodeSecurity("router");
/** A test's pool as an admin (the SPM's vss.status, a router's ops with every grant). */
export const asAdmin = { security: adminSecurity() };
