// `mictlanx audit`: the newest records of the SPM's audit log (admin operations and deletes).
import { parsePositiveInt } from "../lib/defaults.ts";
import { limits } from "../lib/limits.ts";
import { printable, terminalJson } from "../lib/names.ts";
import type { AuditRecordWire } from "../protocol/keys.ts";
import { withSpm, type SpmClientFlags } from "./status.ts";

export async function auditCommand(flags: { spm?: string; json?: boolean; limit?: string }): Promise<void> {
  const wanted = flags.limit === undefined ? limits.auditShownDefault : parsePositiveInt(flags.limit, "--limit");
  const records = await newestRecords(flags, wanted);
  process.stdout.write(flags.json ? `${terminalJson(records)}\n` : auditTable(records));
}

/** The newest `wanted` records, newest first, a page at a time. */
async function newestRecords(spmFlags: SpmClientFlags, wanted: number): Promise<AuditRecordWire[]> {
  return withSpm(spmFlags, async (spm) => {
    const records: AuditRecordWire[] = [];
    let before: number | undefined;
    while (records.length < wanted) {
      const limit = Math.min(wanted - records.length, limits.auditPageMax);
      const page = await spm.call("audit.list", before === undefined ? { limit } : { before, limit });
      records.push(...page.records);
      if (page.next === undefined) break;
      before = page.next;
    }
    return records;
  });
}

/** Names in targets (keys, buckets) go through `printable`: never raw to a terminal. */
export function auditTable(records: AuditRecordWire[]): string {
  if (records.length === 0) return "the audit log is empty\n";
  const lines = [
    `${"TIME".padEnd(24)} ${"ACCESS KEY".padEnd(22)} ${"FROM".padEnd(16)} ${"ACTION".padEnd(18)} ${"OUTCOME".padEnd(12)} TARGET`,
    ...records.map(
      (record) =>
        `${new Date(record.atMs).toISOString().padEnd(24)} ${printable(record.accessKey ?? "-").padEnd(22)} ${printable(record.remote || "-").padEnd(16)} ${printable(record.action).padEnd(18)} ${printable(record.outcome).padEnd(12)} ${printable(record.target)}`,
    ),
  ];
  return `${lines.join("\n")}\n`;
}
