// Where things are when nobody says: the addresses `mictlanx up` uses by default are the ones
// the client commands try with no flags, so `mictlanx up` then `mictlanx put` just works.
import { UsageError } from "./errors.ts";
import { limits } from "./limits.ts";

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

/**
 * `mictlanx up --ha --port BASE`: the SPMs at BASE+100…, etcd's client port at BASE+110 and its
 * peer port at BASE+112, PostgreSQL at BASE+111 (all on 127.0.0.1). Routers and peers stay where
 * upAddresses puts them.
 */
export function upHaAddresses(basePort: number, spms: number) {
  const host = defaults.host;
  return {
    spms: Array.from({ length: spms }, (_, i) => `${host}:${basePort + upHaPortOffsets.spm + i}`),
    etcd: { host, port: basePort + upHaPortOffsets.etcdClient },
    etcdPeer: { host, port: basePort + upHaPortOffsets.etcdPeer },
    postgres: { host, port: basePort + upHaPortOffsets.postgres },
  };
}

export const upHaPortOffsets = { spm: 100, etcdClient: 110, postgres: 111, etcdPeer: 112 } as const;

const upDefault = upAddresses(defaults.upBasePort, defaults.upRouters, defaults.upPeers);

/** --router flag, else MICTLANX_ROUTERS, else the router `mictlanx up` starts by default. */
export function resolveRouters(flag: string | undefined, env = process.env): string {
  return nonEmpty(flag) ?? nonEmpty(env.MICTLANX_ROUTERS) ?? upDefault.routers.join(",");
}

/**
 * --spm flag, else MICTLANX_SPM, else the SPM `mictlanx up` starts by default: a list, since
 * several SPMs may share one catalog (`a,b,c`; see parseSpmList).
 */
export function resolveSpm(flag: string | undefined, env = process.env): string[] {
  return parseSpmList(nonEmpty(flag) ?? nonEmpty(env.MICTLANX_SPM) ?? upDefault.spm);
}

/**
 * `a,b,c` as the SPM addresses it names: trimmed, blanks dropped, each named once (in the order
 * first given), at most limits.spmAddressesMax. Each must still be parsed as an address (src/net
 * does that, with its own usage error for a bad one).
 */
export function parseSpmList(text: string): string[] {
  const distinct = [...new Set(text.split(",").map((part) => part.trim()).filter((part) => part.length > 0))];
  if (distinct.length === 0) throw new UsageError(`--spm needs at least one host:port address, got "${text}"`);
  if (distinct.length > limits.spmAddressesMax) {
    throw new UsageError(`--spm names ${distinct.length} SPMs; at most ${limits.spmAddressesMax} are taken (a VSS runs 3 or 5)`);
  }
  return distinct;
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
