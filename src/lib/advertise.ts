// What a role binds (`--host`) and what others dial (`--advertise`) are two addresses: on a real
// network a node may listen on every address (0.0.0.0) or sit behind a forwarded port, and the
// address it registers, heartbeats and prints must be one that other hosts can reach.
import { UsageError } from "./errors.ts";

/** Where others dial a role. A port left out is the one the role listens on (so `--port 0` works). */
export interface Advertise {
  host: string;
  port?: number;
}

const wildcardHosts = new Set(["", "0.0.0.0", "::", "[::]", "::0", "0:0:0:0:0:0:0:0", "*"]);

/** An address that means "every address of this machine": fine to bind, useless to dial. */
export function isWildcardHost(host: string): boolean {
  return wildcardHosts.has(host.trim());
}

/** `host:port`, with IPv6 hosts in brackets so the port stays readable. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `--advertise HOST[:PORT]`; IPv6 hosts in brackets (`[fd00::4]:7210`). */
export function parseAdvertise(text: string): Advertise {
  const trimmed = text.trim();
  const match = /^(\[[^\]\s]+\]|[^:\s[\]]+)(?::(\d{1,5}))?$/.exec(trimmed);
  const host = match?.[1]?.replace(/^\[|\]$/g, "");
  const port = match?.[2] === undefined ? undefined : Number(match[2]);
  if (!match || !host || (port !== undefined && (port < 1 || port > 65535))) {
    throw new UsageError(`--advertise "${text}" is not an address; write HOST:PORT (or HOST, for the port it listens on), e.g. --advertise 10.0.0.4:7210`);
  }
  if (isWildcardHost(host)) {
    throw new UsageError(`--advertise ${trimmed} names every address, which no other host can dial; advertise the address others should use, e.g. --advertise 10.0.0.4:7210`);
  }
  return port === undefined ? { host } : { host, port };
}

/**
 * The advertise flag of a role, parsed, or undefined for "the bind address, as today". A
 * wildcard bind without one is refused here, before anything listens, with what to pass.
 */
export function resolveAdvertise(role: string, bindHost: string, flag: string | undefined, port?: number): Advertise | undefined {
  if (flag !== undefined && flag.trim().length > 0) return parseAdvertise(flag);
  if (!isWildcardHost(bindHost)) return undefined;
  throw new UsageError(wildcardBindMessage(role, bindHost, port));
}

export function wildcardBindMessage(role: string, bindHost: string, port?: number): string {
  const example = joinHostPort("10.0.0.4", port === undefined || port === 0 ? 7210 : port);
  const shown = bindHost.trim() === "" ? '""' : bindHost.trim();
  return `${role}: --host ${shown} listens on every address, which no other host can dial; pass --advertise HOST:PORT, the address others should use (e.g. --advertise ${example})`;
}

/**
 * For a role about to listen: the function that gives its advertised address once it knows its
 * port. Checked before listening, so a wildcard bind with nothing to advertise binds nothing.
 */
export function advertisedAddressFor(role: string, bindHost: string, advertise: Advertise | undefined): (boundPort: number) => string {
  if (advertise === undefined && isWildcardHost(bindHost)) throw new UsageError(wildcardBindMessage(role, bindHost));
  return (boundPort) => (advertise ? joinHostPort(advertise.host, advertise.port ?? boundPort) : joinHostPort(bindHost, boundPort));
}
