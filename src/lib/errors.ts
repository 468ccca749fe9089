// Typed errors with a stable code. The code travels on the wire in error replies and picks the
// CLI exit code; the message is for a person and says what failed and what to try.

export const errorCodes = [
  "bad_request", // the message had the wrong shape or a value out of bounds
  "frame_too_large", // a frame's length prefix passed frameBytesMax
  "not_found", // the chunk, ball or bucket does not exist
  "corrupt", // stored bytes failed their checksum
  "full", // the write would pass the peer's capacity, or the disk is out of space
  "conflict", // --if-absent met an existing ball, or a version race
  "unavailable", // a node could not be reached (refused, closed, reset)
  "timeout", // a request got no reply in time
  "overloaded", // a bounded queue is full; retry later
  "insufficient_peers", // fewer peers up right now than the replication factor (clients retry it a while)
  "not_implemented", // a subcommand or operation this build does not have yet
  "usage", // bad command-line input
  "forbidden", // no access key, a wrong secret, a revoked key, a missing grant, a certificate refused
  "incompatible", // the far end speaks a wire version, or a file holds a format, this build cannot read (docs/formats.md)
  "internal", // a bug: an assertion failed or something unexpected was thrown
] as const;
export type ErrorCode = (typeof errorCodes)[number];

export class MictlanxError extends Error {
  readonly code: ErrorCode;
  /**
   * True when the far end sent this error as its reply (it is up and said no); false when this
   * process could not get an answer at all (refused, reset, timed out).
   */
  readonly remote: boolean;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; remote?: boolean }) {
    super(message, options);
    this.code = code;
    this.remote = options?.remote ?? false;
    this.name = "MictlanxError";
  }
}

export class BadRequestError extends MictlanxError {
  constructor(message: string) {
    super("bad_request", message);
  }
}
export class FrameTooLargeError extends MictlanxError {
  constructor(frameBytes: number, frameBytesMax: number) {
    super("frame_too_large", `frame of ${frameBytes} bytes is over the limit of ${frameBytesMax} bytes`);
  }
}
export class NotFoundError extends MictlanxError {
  constructor(message: string) {
    super("not_found", message);
  }
}
export class CorruptError extends MictlanxError {
  constructor(message: string) {
    super("corrupt", message);
  }
}
export class FullError extends MictlanxError {
  constructor(message: string) {
    super("full", message);
  }
}
export class ConflictError extends MictlanxError {
  constructor(message: string) {
    super("conflict", message);
  }
}
export class UnavailableError extends MictlanxError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("unavailable", message, options);
  }
}
export class TimeoutError extends MictlanxError {
  constructor(message: string) {
    super("timeout", message);
  }
}
export class OverloadedError extends MictlanxError {
  constructor(message: string) {
    super("overloaded", message);
  }
}
export class UsageError extends MictlanxError {
  constructor(message: string) {
    super("usage", message);
  }
}
/** Not allowed: who asked is not known, or may not do this (exit code 3). */
export class ForbiddenError extends MictlanxError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("forbidden", message, options);
  }
}

/**
 * Another mictlanx version is at the far end (its wire version is outside what this build
 * speaks), or a file was written by a newer build: nothing is read or written past the check.
 */
export class IncompatibleError extends MictlanxError {
  constructor(message: string) {
    super("incompatible", message);
  }
}

export class NotImplementedError extends MictlanxError {
  constructor(message: string) {
    super("not_implemented", message);
  }
}

export function isErrorCode(value: string): value is ErrorCode {
  return (errorCodes as readonly string[]).includes(value);
}

/** Rebuild a typed error from a wire error reply. */
export function errorFromWire(code: string, message: string): MictlanxError {
  return new MictlanxError(isErrorCode(code) ? code : "internal", message, { remote: true });
}

/** Any thrown value as a MictlanxError; unknown throws become `internal` with their message kept. */
export function toMictlanxError(error: unknown): MictlanxError {
  if (error instanceof MictlanxError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new MictlanxError("internal", message, { cause: error });
}

/** CLI exit codes, documented in the README. */
export const exitCodes = { ok: 0, failure: 1, usage: 2, forbidden: 3, notFound: 4 } as const;

export function exitCodeFor(error: unknown): number {
  if (error instanceof MictlanxError) {
    if (error.code === "not_found") return exitCodes.notFound;
    if (error.code === "usage") return exitCodes.usage;
    if (error.code === "forbidden") return exitCodes.forbidden;
  }
  return exitCodes.failure;
}
