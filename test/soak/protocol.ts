// What passes between the soak and its worker processes, parsed with zod on the way in: the
// worker's command line, the JSON lines it prints, and the ledger file it leaves at the end.
import { z } from "zod";
import { opKinds, type OpKind } from "./plan.ts";

export const workerArgs = z.object({
  index: z.coerce.number().int().min(0),
  seed: z.coerce.number().int().min(0),
  routers: z.string().min(1),
  bucket: z.string().min(1),
  durationMs: z.coerce.number().int().min(1),
  ledger: z.string().min(1),
  parentPid: z.coerce.number().int().min(1),
});
export type WorkerArgs = z.infer<typeof workerArgs>;

const counts = z.record(z.enum(opKinds as [OpKind, ...OpKind[]]), z.number().int().min(0));
export type OpCounts = Record<OpKind, number>;

export const failureKinds = ["wrong-bytes", "missing", "lost", "unreadable", "soak-bug"] as const;
export type FailureKind = (typeof failureKinds)[number];

export const workerLine = z.discriminatedUnion("type", [
  z.object({ type: z.literal("progress"), worker: z.number().int(), ops: counts, errors: counts }),
  z.object({ type: z.literal("failure"), worker: z.number().int(), kind: z.enum(failureKinds), message: z.string() }),
  z.object({ type: z.literal("done"), worker: z.number().int(), ops: counts, errors: counts }),
]);
export type WorkerLine = z.infer<typeof workerLine>;

const state = z.discriminatedUnion("kind", [z.object({ kind: z.literal("absent") }), z.object({ kind: z.literal("present"), size: z.number().int().min(0), sha256: z.string() })]);
const attempt = z.object({ index: z.number().int(), state, label: z.string(), outcome: z.enum(["acked", "pending", "unknown"]) });

export const ledgerFile = z.object({
  worker: z.number().int(),
  seed: z.number().int(),
  keys: z.array(z.object({ key: z.string(), ballId: z.string().optional(), acceptable: z.array(attempt).min(1) })),
  /** Every write's label by the sha256 of its payload, to name the write a wrong read came from. */
  writes: z.record(z.string(), z.string()),
});
export type LedgerFile = z.infer<typeof ledgerFile>;

export function zeroCounts(): OpCounts {
  return Object.fromEntries(opKinds.map((kind) => [kind, 0])) as OpCounts;
}
