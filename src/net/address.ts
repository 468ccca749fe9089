// host:port addresses as people type them, and the role label that error messages use.
import { UsageError } from "../lib/errors.ts";

export interface Address {
  host: string;
  port: number;
}

export function parseAddress(text: string): Address {
  const trimmed = text.trim();
  const match = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(trimmed);
  const port = match ? Number(match[2]) : NaN;
  if (!match || !match[1] || port < 1 || port > 65535) {
    throw new UsageError(`"${text}" is not an address; write host:port, e.g. 127.0.0.1:7200`);
  }
  return { host: match[1].replace(/^\[|\]$/g, ""), port };
}

export function parseAddressList(text: string): Address[] {
  const parts = text.split(",").map((part) => part.trim()).filter((part) => part.length > 0);
  if (parts.length === 0) throw new UsageError("expected at least one host:port address");
  return parts.map(parseAddress);
}

export function formatAddress(address: Address): string {
  return address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
