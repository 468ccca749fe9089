// The VSS's own certificate authority, without OpenSSL: `mictlanx certs init` makes a CA (an
// ECDSA P-256 key and a self-signed certificate), `mictlanx certs issue` a node's certificate
// signed by it. X.509 is written by @peculiar/x509 on WebCrypto (a well-kept library) rather
// than by hand-made ASN.1.
//
// A node certificate says what the node is in a URI subject alternative name,
// `urn:mictlanx:<role>:<id>` (also CN=<id>, OU=<role>), and where it is in IP / DNS names. The
// nodes of a VSS authenticate each other by it over mutual TLS (src/net/tls.ts reads it back).
// Every certificate is good for both ends of a connection (serverAuth and clientAuth): a peer
// serves routers and also dials the SPM.
import type * as X509 from "@peculiar/x509";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { writeFileDurable } from "../lib/durable-file.ts";
import { UsageError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { nodeCertificateUri, nodeRoles, type NodeRole } from "../lib/node-identity.ts";

/**
 * The library, loaded on first use. @peculiar/x509 needs the reflect-metadata polyfill in place
 * before it is evaluated; a static import pair is not enough inside `bun build --compile`, whose
 * bundle may evaluate the library first. Loading it here, in order, always works.
 */
let loaded: Promise<typeof X509> | undefined;
export function loadX509(): Promise<typeof X509> {
  loaded ??= (async () => {
    await import("reflect-metadata");
    const x509 = await import("@peculiar/x509");
    x509.cryptoProvider.set(globalThis.crypto);
    return x509;
  })();
  return loaded;
}

const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const dayMs = 86_400_000;

export interface CaFiles {
  certPath: string;
  keyPath: string;
}

export function caFiles(dir: string): CaFiles {
  return { certPath: join(dir, "ca.crt"), keyPath: join(dir, "ca.key") };
}

export function nodeFiles(dir: string, id: string): { certPath: string; keyPath: string; caPath: string } {
  return { certPath: join(dir, `${id}.crt`), keyPath: join(dir, `${id}.key`), caPath: caFiles(dir).certPath };
}

/** Make a CA in `dir` (ca.crt, ca.key 0600). An existing one is never replaced: its certificates would all stop working. */
export async function initCa(dir: string, options: { days?: number; name?: string } = {}): Promise<CaFiles> {
  const files = caFiles(dir);
  if (existsSync(files.keyPath) || existsSync(files.certPath)) {
    throw new UsageError(`${dir} already holds a CA (ca.crt / ca.key); every certificate it issued depends on it, so it is kept. Use another --dir for a new VSS`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const x509 = await loadX509();
  const days = checkDays(options.days ?? limits.caValidityDaysDefault);
  const keys = await generateKeys();
  const now = Date.now();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${escapeDn(options.name ?? "mictlanx VSS CA")}, O=mictlanx`,
    notBefore: new Date(now - limits.certificateBackdateMs),
    notAfter: new Date(now + days * dayMs),
    signingAlgorithm: algorithm,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  writeSecret(files.keyPath, await privateKeyPem(keys.privateKey));
  writeFileDurable(files.certPath, certificate.toString("pem"), { mode: 0o644 });
  return files;
}

export interface IssueOptions {
  dir: string;
  role: NodeRole;
  id: string;
  /** IP addresses and DNS names the node is dialled at (its --advertise host). */
  hosts: string[];
  days?: number;
}

export interface IssuedFiles {
  certPath: string;
  keyPath: string;
  caPath: string;
  notAfterMs: number;
}

/** Issue (or renew: the files are replaced) a node's certificate and key, signed by the CA in `dir`. */
export async function issueNodeCertificate(options: IssueOptions): Promise<IssuedFiles> {
  checkNodeName(options.role, options.id);
  const x509 = await loadX509();
  const ca = loadCa(x509, options.dir);
  const days = checkDays(options.days ?? limits.certificateValidityDaysDefault);
  const keys = await generateKeys();
  const now = Date.now();
  const notAfterMs = Math.min(now + days * dayMs, ca.certificate.notAfter.getTime());
  const names = [{ type: "url" as const, value: nodeCertificateUri(options.role, options.id) }, ...options.hosts.map(hostName)];
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${escapeDn(options.id)}, OU=${options.role}, O=mictlanx`,
    issuer: ca.certificate.subject,
    notBefore: new Date(now - limits.certificateBackdateMs),
    notAfter: new Date(notAfterMs),
    signingAlgorithm: algorithm,
    publicKey: keys.publicKey,
    signingKey: await ca.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate),
    ],
  });
  const files = nodeFiles(options.dir, options.id);
  writeSecret(files.keyPath, await privateKeyPem(keys.privateKey));
  writeFileDurable(files.certPath, certificate.toString("pem"), { mode: 0o644 });
  return { ...files, notAfterMs };
}

/** When a PEM certificate (the first in the text) stops being valid, in ms since the epoch. */
export async function certificateNotAfterMs(pem: string): Promise<number> {
  const x509 = await loadX509();
  return new x509.X509Certificate(pem).notAfter.getTime();
}

function loadCa(x509: typeof X509, dir: string): { certificate: X509.X509Certificate; privateKey: Promise<CryptoKey> } {
  const files = caFiles(dir);
  if (!existsSync(files.keyPath) || !existsSync(files.certPath)) {
    throw new UsageError(`${dir} holds no CA (ca.crt and ca.key); make one with: mictlanx certs init --dir ${dir}`);
  }
  const certificate = new x509.X509Certificate(readFileSync(files.certPath, "utf8"));
  const der = x509.PemConverter.decodeFirst(readFileSync(files.keyPath, "utf8"));
  const privateKey = globalThis.crypto.subtle.importKey("pkcs8", der, algorithm, false, ["sign"]);
  return { certificate, privateKey };
}

function hostName(host: string): { type: "ip" | "dns"; value: string } {
  if (isIP(host)) return { type: "ip", value: host };
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(host)) {
    throw new UsageError(`--host "${host}" is neither an IP address nor a DNS name`);
  }
  return { type: "dns", value: host };
}

function checkNodeName(role: string, id: string): void {
  if (!(nodeRoles as readonly string[]).includes(role)) throw new UsageError(`--role must be one of ${nodeRoles.join(", ")}, got "${role}"`);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(id) || id.length > limits.certificateIdBytesMax) {
    throw new UsageError(`--id "${id}": a node id in a certificate is letters, digits, '.', '_' and '-' (at most ${limits.certificateIdBytesMax}), starting with a letter or digit`);
  }
}

function checkDays(days: number): number {
  if (!Number.isInteger(days) || days < 1 || days > limits.certificateValidityDaysMax) {
    throw new UsageError(`--days must be a whole number of days from 1 to ${limits.certificateValidityDaysMax}, got ${days}`);
  }
  return days;
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await globalThis.crypto.subtle.generateKey(algorithm, true, ["sign", "verify"])) as CryptoKeyPair;
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const x509 = await loadX509();
  return x509.PemConverter.encode(await globalThis.crypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

/** A private key: written whole (write-then-rename), readable by its owner only. */
function writeSecret(path: string, text: string): void {
  writeFileDurable(path, text, { mode: 0o600 });
}

/** 16 random bytes, positive (the top bit clear), as X.509 serials should be. */
function randomSerial(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return Buffer.from(bytes).toString("hex");
}

function escapeDn(text: string): string {
  return text.replace(/([,+"\\<>;=])/g, "\\$1");
}
