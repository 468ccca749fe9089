// `mictlanx key create | ls | revoke`: access keys, on the SPM (like `status` and `peer drain`).
import { accessKeyIdPattern } from "../lib/access-keys.ts";
import { UsageError } from "../lib/errors.ts";
import { describeGrants, parseGrantFlags } from "../lib/grants.ts";
import { printable, terminalJson } from "../lib/names.ts";
import type { AccessKeyListed } from "../protocol/keys.ts";
import { withSpm, type SpmClientFlags } from "./status.ts";

export interface KeyCreateFlags {
  spm?: string;
  bucket?: string[];
  allow?: string;
  admin?: boolean;
  json?: boolean;
}

export async function keyCreateCommand(flags: KeyCreateFlags): Promise<void> {
  const grants = parseGrantFlags(flags.bucket ?? [], flags.allow);
  const made = await withSpm(flags, (spm) => spm.call("key.create", { grants, admin: flags.admin === true }));
  if (flags.json) {
    process.stdout.write(`${terminalJson({ accessKey: made.accessKey, secretKey: made.secretKey, grants: made.grants, admin: made.admin })}\n`);
    return;
  }
  process.stdout.write(
    `access key  ${made.accessKey}\n` +
      `secret key  ${made.secretKey}\n` +
      `The secret key is not shown again: store it now (grants ${printable(describeGrants(made.grants))}${made.admin ? "; admin" : ""}).\n`,
  );
}

/** Every key, page after page. */
async function allKeys(spmFlags: SpmClientFlags): Promise<AccessKeyListed[]> {
  return withSpm(spmFlags, async (spm) => {
    const keys: AccessKeyListed[] = [];
    let after: string | undefined;
    do {
      const page = await spm.call("key.list", after === undefined ? {} : { after });
      keys.push(...page.keys);
      after = page.next;
    } while (after !== undefined);
    return keys;
  });
}

export async function keyListCommand(flags: { spm?: string; json?: boolean }): Promise<void> {
  const keys = await allKeys(flags);
  if (flags.json) {
    process.stdout.write(`${terminalJson(keys.map(({ accessKey, grants, admin, createdMs, revoked }) => ({ accessKey, grants, admin, createdMs, revoked })))}\n`);
    return;
  }
  process.stdout.write(keyTable(keys));
}

export function keyTable(keys: AccessKeyListed[]): string {
  if (keys.length === 0) return "no access keys (mictlanx key create makes one)\n";
  const lines = [
    `${"ACCESS KEY".padEnd(22)} ${"STATE".padEnd(8)} ${"ADMIN".padEnd(5)} ${"CREATED".padEnd(20)} GRANTS`,
    ...keys.map(
      (key) =>
        `${key.accessKey.padEnd(22)} ${(key.revoked ? "revoked" : "valid").padEnd(8)} ${(key.admin ? "yes" : "no").padEnd(5)} ${new Date(key.createdMs).toISOString().slice(0, 19).replace("T", " ").padEnd(20)} ${printable(describeGrants(key.grants))}`,
    ),
  ];
  return `${lines.join("\n")}\n`;
}

export async function keyRevokeCommand(accessKey: string, flags: { spm?: string; json?: boolean }): Promise<void> {
  if (!accessKeyIdPattern.test(accessKey)) {
    throw new UsageError(`"${printable(accessKey)}" is not an access key id: those are MX and 18 letters A-Z or digits 2-7 (mictlanx key ls lists them)`);
  }
  const result = await withSpm(flags, (spm) => spm.call("key.revoke", { accessKey }));
  process.stdout.write(flags.json ? `${terminalJson(result)}\n` : `access key ${result.accessKey} is revoked; routers stop taking it within seconds\n`);
}
