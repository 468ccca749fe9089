// TLS for every link, with Bun's own TLS. A node (SPM, router, peer) holds a certificate signed
// by the VSS's CA that names its role and id (src/lib/node-identity.ts); clients hold only the
// CA, to know they talk to this VSS, and prove an access key instead (see keyProof).
//
// The files are read at start and again on SIGHUP (`reload`): a renewed certificate is used by
// every connection opened after that, without a restart.
import { X509Certificate } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { UsageError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { certifiedNodeOf, type CertifiedNode, type NodeRole } from "../lib/node-identity.ts";

export interface TlsFiles {
  /** This node's certificate (PEM); absent for a client, which proves an access key instead. */
  certPath?: string;
  keyPath?: string;
  /** The VSS's CA (PEM): the certificates the other end must be signed by… */
  caPath?: string;
  /** …or its PEM text itself (a library client given `ca` as text). */
  caPem?: string;
}

export interface TlsMaterial {
  cert?: string;
  key?: string;
  ca: string;
  /** What our own certificate says: the node it names and when it expires. */
  own?: { node: CertifiedNode | undefined; notAfterMs: number };
}

/** The TLS files of a node or client, read now and again on `reload()`. */
export class TlsSource {
  private material: TlsMaterial;

  constructor(readonly files: TlsFiles) {
    this.material = readMaterial(files);
  }

  get current(): TlsMaterial {
    return this.material;
  }

  /**
   * Read the files again (SIGHUP). A node's renewed certificate must name the same node and be
   * valid now: otherwise, as on any read error, the old material stays in use and the error is
   * thrown, so a mistaken copy never turns a running peer into another node.
   */
  reload(): void {
    const next = readMaterial(this.files);
    const node = this.material.own?.node;
    if (node) checkOwnMaterial(next, this.files.certPath, node.role, node.id);
    this.material = next;
  }
}

function readMaterial(files: TlsFiles): TlsMaterial {
  if ((files.certPath === undefined) !== (files.keyPath === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together: give both (a node's certificate and its key) or neither");
  }
  const ca = files.caPem ?? (files.caPath === undefined ? undefined : readPem(files.caPath, "--tls-ca", "CERTIFICATE"));
  if (ca === undefined) throw new UsageError("TLS needs the VSS's CA: --tls-ca (a node) or --ca / MICTLANX_CA (a client)");
  if (files.certPath === undefined || files.keyPath === undefined) return { ca };
  const cert = readPem(files.certPath, "--tls-cert", "CERTIFICATE");
  return { ca, cert, key: readPem(files.keyPath, "--tls-key", "PRIVATE KEY"), own: summarize(files.certPath, cert) };
}

function summarize(path: string, pem: string): { node: CertifiedNode | undefined; notAfterMs: number } {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pem);
  } catch (error) {
    throw new UsageError(`--tls-cert ${path} is not a certificate Bun can read: ${(error as Error).message}`);
  }
  return { node: certifiedNodeOf(certificate.subjectAltName), notAfterMs: certificate.validToDate.getTime() };
}

function readPem(path: string, flag: string, kind: string): string {
  let text: string;
  try {
    const bytes = statSync(path).size;
    if (bytes > limits.tlsFileBytesMax) throw new UsageError(`${flag} ${path} is ${bytes} bytes; a PEM file is at most ${limits.tlsFileBytesMax}`);
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = (error as { code?: string }).code;
    const why = code === "ENOENT" ? "does not exist" : code === "EACCES" ? "cannot be read (permission denied)" : (error as Error).message;
    throw new UsageError(`${flag} ${path} ${why}; make certificates with: mictlanx certs init / mictlanx certs issue`);
  }
  if (!text.includes(`-----BEGIN ${kind}`) && !(kind === "PRIVATE KEY" && /-----BEGIN [A-Z ]*PRIVATE KEY/.test(text))) {
    throw new UsageError(`${flag} ${path} holds no PEM "${kind}"`);
  }
  return text;
}

/** The certificate must name this node, and be valid now (checked at start and again on each SIGHUP). */
export function checkOwnCertificate(tls: TlsSource, role: NodeRole, id: string | undefined): CertifiedNode {
  return checkOwnMaterial(tls.current, tls.files.certPath, role, id);
}

function checkOwnMaterial(material: TlsMaterial, path: string | undefined, role: NodeRole, id: string | undefined): CertifiedNode {
  const own = material.own;
  if (!own?.node) throw new UsageError(`--tls-cert ${path} names no mictlanx node (issue one with mictlanx certs issue)`);
  const node = own.node;
  if (node.role !== role) throw new UsageError(`--tls-cert ${path} is a ${node.role}'s certificate (${node.id}), not a ${role}'s`);
  if (id !== undefined && node.id !== id) {
    throw new UsageError(`--tls-cert ${path} names ${role} ${node.id}, but this ${role} is ${id}; issue one for it (mictlanx certs issue --role ${role} --id ${id}) or start it with --id ${node.id}`);
  }
  if (own.notAfterMs <= Date.now()) throw new UsageError(`--tls-cert ${path} expired on ${new Date(own.notAfterMs).toISOString()}; renew it with mictlanx certs issue`);
  return node;
}

/** What Bun.listen is given: our certificate, and the CA that clients' certificates must be signed by. */
export function serverTlsOptions(material: TlsMaterial) {
  if (material.cert === undefined || material.key === undefined) throw new UsageError("a node needs --tls-cert and --tls-key to listen with TLS");
  // A client without a certificate is let in (it proves an access key); one with a certificate
  // that fails verification is told why and closed by the server (it must not be believed).
  return { cert: material.cert, key: material.key, ca: material.ca, requestCert: true, rejectUnauthorized: false };
}

/** What Bun.connect is given: the CA the server must be signed by, our certificate when we are a node, and the name to check. */
export function clientTlsOptions(material: TlsMaterial, host: string) {
  return {
    ca: material.ca,
    ...(material.cert === undefined || material.key === undefined ? {} : { cert: material.cert, key: material.key }),
    serverName: host,
    rejectUnauthorized: true,
  };
}

/** The node a verified peer certificate names (undefined for none, or one that names no node). */
export function certifiedNodeOfSocket(socket: { authorized: boolean; getPeerCertificate(): unknown }): CertifiedNode | undefined {
  if (!socket.authorized) return undefined;
  const certificate = socket.getPeerCertificate() as { subjectaltname?: string } | null | undefined;
  return certifiedNodeOf(certificate?.subjectaltname);
}

/** Whether the far end sent a certificate at all (verified or not). */
export function presentedCertificate(socket: { getPeerCertificate(): unknown }): boolean {
  const certificate = socket.getPeerCertificate() as { raw?: unknown; subject?: unknown } | null | undefined;
  return certificate !== null && certificate !== undefined && (certificate.raw !== undefined || certificate.subject !== undefined);
}

// --- access keys: the proof a client sends in its hello -------------------------------------

/**
 * A client proves it holds an access key's secret without sending it: an HMAC-SHA256, keyed by
 * the secret, of keying material exported from this very TLS session (RFC 8446 §7.5). Both ends
 * compute the same material and nobody else can, so the proof is a challenge-response whose
 * challenge costs no round trip: it cannot be replayed on another connection, and a request
 * costs no signature once the connection has proved its key.
 */
export const keyProofLabel = "EXPORTER-mictlanx-access-key";
export const keyProofBytes = 32;

export function sessionBinding(socket: { exportKeyingMaterial(length: number, label: string, context: Buffer): Buffer }): Uint8Array {
  return new Uint8Array(socket.exportKeyingMaterial(keyProofBytes, keyProofLabel, Buffer.alloc(0)));
}

export function keyProof(secretKey: string, binding: Uint8Array): string {
  return new Bun.CryptoHasher("sha256", secretKey).update("mictlanx key proof v1\n").update(binding).digest("hex");
}

/** Constant-time comparison of two proofs (hex of equal length). */
export function proofsEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let index = 0; index < a.length; index += 1) difference |= a.charCodeAt(index) ^ b.charCodeAt(index);
  return difference === 0;
}
