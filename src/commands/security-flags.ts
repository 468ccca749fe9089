// The TLS flags every role takes (--tls-cert, --tls-key, --tls-ca, or --insecure), checked
// before the role starts: a certificate that names another role or id than the node's is a
// usage error now, not a heartbeat refused later. SIGHUP reads the files again.
import { UsageError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import type { NodeRole } from "../lib/node-identity.ts";
import { TlsSource, checkOwnCertificate } from "../net/tls.ts";
import { printReadyLine, type ReadyRole } from "./ready.ts";

export interface TlsFlags {
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  tlsCa?: string | undefined;
  insecure?: boolean | undefined;
}

export interface NodeSecurity {
  tls: TlsSource;
}

/** The node's TLS, or undefined under --insecure; `id`: the id the node will use, when it has one of its own (a peer's). */
export function nodeSecurity(role: NodeRole, flags: TlsFlags, id?: string): NodeSecurity | undefined {
  const given = [flags.tlsCert, flags.tlsKey, flags.tlsCa].filter((flag) => flag !== undefined).length;
  if (flags.insecure) {
    if (given > 0) throw new UsageError(`${role}: --insecure runs without TLS; drop it, or drop --tls-cert/--tls-key/--tls-ca`);
    return undefined;
  }
  if (given < 3 || flags.tlsCert === undefined || flags.tlsKey === undefined || flags.tlsCa === undefined) {
    throw new UsageError(
      `${role} needs --tls-cert, --tls-key and --tls-ca (make them with: mictlanx certs init --dir D, then mictlanx certs issue --dir D --role ${role} --id ID --host HOST), ` +
        "or --insecure to run without TLS and access keys (mictlanx up makes them by itself)",
    );
  }
  const tls = new TlsSource({ certPath: flags.tlsCert, keyPath: flags.tlsKey, caPath: flags.tlsCa });
  checkOwnCertificate(tls, role, id);
  return { tls };
}

/** What a ready line adds: a role without TLS says so each time it starts. */
export function securityNote(security: NodeSecurity | undefined): string {
  if (security) return "";
  return " (insecure: no TLS, no access keys)";
}

/** Days left before a certificate expires, for a warning at start and in status (30 days ahead). */
export function expiryWarning(security: NodeSecurity | undefined, nowMs = Date.now()): string | undefined {
  const notAfterMs = security?.tls.current.own?.notAfterMs;
  if (notAfterMs === undefined || notAfterMs - nowMs > limits.certificateExpiryWarnMs) return undefined;
  const days = Math.max(0, Math.floor((notAfterMs - nowMs) / 86_400_000));
  return `its certificate expires in ${days} days (${new Date(notAfterMs).toISOString()}); renew it with mictlanx certs issue and send SIGHUP`;
}

/** On SIGHUP: the role reads its certificate files again (a renewal), saying what it did. */
export function reloadOnSighup(role: string, reload: () => Promise<void> | void): void {
  process.on("SIGHUP", () => {
    Promise.resolve()
      .then(reload)
      .then(
        () => process.stderr.write(`${role}: SIGHUP: certificate files read again; new connections use them\n`),
        (error: unknown) => process.stderr.write(`${role}: SIGHUP: kept the old certificate: ${(error as Error).message}\n`),
      );
  });
}

/**
 * A role is up: its ready line (saying so when it runs without TLS), a warning when its
 * certificate expires within 30 days, and SIGHUP to read its certificate files again.
 */
export function announceRole(
  role: NodeRole,
  name: string,
  running: ReadyRole & { reloadTls(): void },
  bindHost: string,
  security: NodeSecurity | undefined,
  extraNote = "",
): void {
  printReadyLine(name, running, bindHost, `${securityNote(security)}${extraNote}`);
  const expiring = expiryWarning(security);
  if (expiring) process.stderr.write(`${role}: ${expiring}\n`);
  reloadOnSighup(role, () => running.reloadTls());
}
