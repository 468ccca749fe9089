// Why a role could not listen, in words a person can act on. Bun says only "Failed to listen at
// 127.0.0.1" (code EADDRINUSE); a second `mictlanx up` then reported "spm closed its output
// before it was ready", pointing at a log. This names the port, who holds it (on Linux, from
// /proc: the listening socket's inode, then the process with that inode open), and the fix.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { MictlanxError, UnavailableError, UsageError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";

export interface PortOwner {
  pid: number;
  /** Its command line, cut at portOwnerCommandCharsMax. */
  command: string;
}

/** A listen failure as a typed error: which address, why, and what to do. */
export function listenError(host: string, port: number, flag: string, error: unknown): MictlanxError {
  const code = (error as { code?: string } | null)?.code ?? "";
  const where = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  if (code === "EADDRINUSE") {
    const owner = portOwner(port);
    const by = owner ? ` by pid ${owner.pid} (${owner.command})` : " by another process";
    return new UnavailableError(
      `cannot listen on ${where}: the port is taken${by}; stop that process, or give another ${flag} (0 picks a free port)`,
      { cause: error },
    );
  }
  if (code === "EADDRNOTAVAIL") {
    return new UsageError(`cannot listen on ${where}: no network interface of this machine has the address ${host}; give --host 127.0.0.1, 0.0.0.0 or one of this machine's addresses`);
  }
  if (code === "EACCES") {
    return new UsageError(`cannot listen on ${where}: ports below 1024 need privileges; give a ${flag} of 1024 or more (0 picks a free port)`);
  }
  const text = error instanceof Error ? error.message : String(error);
  return new UnavailableError(`cannot listen on ${where}: ${text}${code ? ` (${code})` : ""}`, { cause: error });
}

/**
 * The process listening on a TCP port of this machine, when /proc says (Linux; processes of
 * other users are seen only by root). Undefined when it cannot tell.
 */
export function portOwner(port: number): PortOwner | undefined {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return undefined;
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined;
  }
  for (const pid of pids.slice(0, limits.portOwnerProcessesScannedMax)) {
    if (holdsSocket(pid, inodes)) return { pid: Number(pid), command: commandLine(pid) };
  }
  return undefined;
}

/** The inodes of sockets listening on `port` (IPv4 and IPv6). */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      const state = fields[3];
      const inode = fields[9];
      if (local?.endsWith(`:${hexPort}`) && state === "0A" && inode !== undefined && inode !== "0") inodes.add(inode);
    }
  }
  return inodes;
}

function holdsSocket(pid: string, inodes: Set<string>): boolean {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false; // gone, or another user's
  }
  for (const fd of fds) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode !== undefined && inodes.has(inode)) return true;
  }
  return false;
}

function commandLine(pid: string): string {
  try {
    const text = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((part) => part.length > 0).join(" ");
    return text.length > limits.portOwnerCommandCharsMax ? `${text.slice(0, limits.portOwnerCommandCharsMax)}…` : text || "?";
  } catch {
    return "?";
  }
}
