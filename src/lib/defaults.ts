// Where things are when nobody says: the addresses `mictlanx up` uses by default are the ones
// the client commands try with no flags, so `mictlanx up` then `mictlanx put` just works.
import { UsageError } from "./errors.ts";

export const defaults = {
  host: "127.0.0.1",
  /** `mictlanx up --port BASE`: SPM at BASE, routers at BASE+1…, peers at BASE+10…. */
  upBasePort: 7200,
  upPeers: 3,
  upRouters: 1,
  upDataDir: ".mictlanx",
  replicationFactor: 2,
} as const;

export function upAddresses(basePort: number, routers: number, peers: number) {
  const host = defaults.host;
  return {
    spm: `${host}:${basePort}`,
    routers: Array.from({ length: routers }, (_, i) => `${host}:${basePort + 1 + i}`),
    peers: Array.from({ length: peers }, (_, i) => `${host}:${basePort + 10 + i}`),
  };
}

const upDefault = upAddresses(defaults.upBasePort, defaults.upRouters, defaults.upPeers);

/** --router flag, else MICTLANX_ROUTERS, else the router `mictlanx up` starts by default. */
export function resolveRouters(flag: string | undefined, env = process.env): string {
  return nonEmpty(flag) ?? nonEmpty(env.MICTLANX_ROUTERS) ?? upDefault.routers.join(",");
}

/** --spm flag, else MICTLANX_SPM, else the SPM `mictlanx up` starts by default. */
export function resolveSpm(flag: string | undefined, env = process.env): string {
  return nonEmpty(flag) ?? nonEmpty(env.MICTLANX_SPM) ?? upDefault.spm;
}

/** A flag's or variable's value, trimmed; undefined when it is unset or blank. */
export function nonEmpty(value: string | undefined | null): string | undefined {
  return value !== undefined && value !== null && value.trim().length > 0 ? value.trim() : undefined;
}

export function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`"${text}" is not a port; use a number from 1 to 65535 (0 picks a free one)`);
  }
  return port;
}

export function parsePositiveInt(text: string, what: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new UsageError(`${what} must be a whole number ≥ 1, got "${text}"`);
  return value;
}
