// Every frame carries one envelope. A request names an operation and carries an id chosen by
// the caller; the reply carries the same id, so many requests can be in flight on one
// connection and replies can come back in any order.
//
//   request:  { id: u32, op: string, args: <op's request shape> }
//   reply:    { id: u32, ok: true,  result: <op's result shape> }
//           | { id: u32, ok: false, code: ErrorCode, message: string }
//
// An id of 0 in a reply means the server could not read the request's id (garbage frame).
import { z } from "zod";

export const requestIdMax = 0xffff_ffff;

export const requestEnvelope = z.object({
  id: z.number().int().min(1).max(requestIdMax),
  op: z.string().min(1).max(64),
  args: z.unknown(),
});
export type RequestEnvelope = z.infer<typeof requestEnvelope>;

export const okReplyEnvelope = z.object({
  id: z.number().int().min(0).max(requestIdMax),
  ok: z.literal(true),
  result: z.unknown(),
});
export const errorReplyEnvelope = z.object({
  id: z.number().int().min(0).max(requestIdMax),
  ok: z.literal(false),
  code: z.string().max(64),
  message: z.string().max(4096),
});
export const replyEnvelope = z.discriminatedUnion("ok", [okReplyEnvelope, errorReplyEnvelope]);
export type ReplyEnvelope = z.infer<typeof replyEnvelope>;

/** An operation: the shape of its arguments and of its result. */
export interface OpSpec<Args extends z.ZodType = z.ZodType, Result extends z.ZodType = z.ZodType> {
  args: Args;
  result: Result;
}
export type OpTable = Record<string, OpSpec>;
export type ArgsOf<T extends OpTable, K extends keyof T> = z.input<T[K]["args"]>;
export type ParsedArgsOf<T extends OpTable, K extends keyof T> = z.output<T[K]["args"]>;
export type ResultOf<T extends OpTable, K extends keyof T> = z.output<T[K]["result"]>;

export function defineOps<T extends OpTable>(table: T): T {
  return table;
}

/** Turn a zod failure into one readable line: "args.size: expected number, got string". */
export function describeZodError(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "(message)"}: ${issue.message}`)
    .join("; ");
}
