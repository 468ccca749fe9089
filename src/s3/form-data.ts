// A streaming multipart/form-data parser for S3's PostObject (browser form uploads). Fed the body
// in pieces of any size, it hands back the form's fields whole (bounded: they are small) and the
// file part as data as it arrives, never held whole. As S3 requires, the file is the last field:
// the parser stops reading parts after it (what follows the closing boundary is epilogue).
//
//   --BOUNDARY\r\n Content-Disposition: form-data; name="key"\r\n\r\n VALUE \r\n--BOUNDARY\r\n …
//   … name="file"; filename="a.txt"\r\n Content-Type: text/plain\r\n\r\n BYTES \r\n--BOUNDARY--\r\n
//
// Pure: no I/O. Throws S3Error (InvalidArgument) for a body that is not such a form.
import { S3Error } from "./errors.ts";

export interface FormLimits {
  /** All fields' names and values together (S3: 20 KiB). */
  fieldsBytesMax: number;
  /** Fields before the file. */
  fieldsMax: number;
  /** One part's header block. */
  partHeaderBytesMax: number;
}

export type FormEvent =
  | { kind: "field"; name: string; value: string }
  /** The file part begins; its bytes start at `dataOffset` of the body. */
  | { kind: "file"; name: string; filename: string; contentType: string; dataOffset: number }
  | { kind: "data"; data: Uint8Array }
  /** The file part ended, `size` bytes. */
  | { kind: "fileEnd"; size: number };

type State = "preamble" | "afterBoundary" | "headers" | "field" | "file" | "done";

const headerEnd = Buffer.from("\r\n\r\n");

function malformed(detail: string): S3Error {
  return new S3Error("InvalidArgument", `The body of your POST request is not well-formed multipart/form-data: ${detail}`);
}

/** The boundary of a `multipart/form-data; boundary=…` Content-Type, or undefined when it is not one. */
export function formBoundary(contentType: string | null): string | undefined {
  if (contentType === null) return undefined;
  const [type, ...params] = contentType.split(";");
  if (type?.trim().toLowerCase() !== "multipart/form-data") return undefined;
  for (const param of params) {
    const equals = param.indexOf("=");
    if (equals < 0 || param.slice(0, equals).trim().toLowerCase() !== "boundary") continue;
    const value = param.slice(equals + 1).trim().replace(/^"(.*)"$/, "$1");
    return /^[0-9A-Za-z'()+_,./:=? -]{1,70}$/.test(value) ? value : undefined; // RFC 2046's bchars, 1–70 of them
  }
  return undefined;
}

export class FormDataParser {
  private readonly opening: Buffer;
  private readonly delimiter: Buffer;
  private pending: Buffer = Buffer.alloc(0);
  /** Offset in the body of pending[0]. */
  private base = 0;
  private state: State = "preamble";
  private fieldsBytes = 0;
  private fields = 0;
  private part: { name: string; filename: string | undefined; contentType: string } | undefined;
  private fileSize = 0;

  constructor(
    boundary: string,
    private readonly limits: FormLimits,
  ) {
    this.opening = Buffer.from(`--${boundary}`);
    this.delimiter = Buffer.from(`\r\n--${boundary}`);
  }

  /** Whether the closing boundary has been read. */
  get done(): boolean {
    return this.state === "done";
  }

  push(piece: Uint8Array): FormEvent[] {
    this.pending = this.pending.length === 0 ? Buffer.from(piece) : Buffer.concat([this.pending, piece]);
    const events: FormEvent[] = [];
    while (this.step(events));
    return events;
  }

  /** The body ended: throws unless the form was closed. */
  end(): void {
    if (this.state !== "done") throw malformed(this.state === "file" ? "the body ends inside the file, before its closing boundary" : "the body ends before the closing boundary");
  }

  private consume(bytes: number): void {
    this.pending = this.pending.subarray(bytes);
    this.base += bytes;
  }

  /** One move of the state machine; false when it needs more bytes. */
  private step(events: FormEvent[]): boolean {
    switch (this.state) {
      case "preamble":
        return this.preamble();
      case "afterBoundary":
        return this.afterBoundary();
      case "headers":
        return this.headers(events);
      case "field":
        return this.field(events);
      case "file":
        return this.file(events);
      case "done":
        this.consume(this.pending.length); // the epilogue: ignored
        return false;
    }
  }

  private preamble(): boolean {
    const at = this.pending.indexOf(this.opening);
    if (at < 0) {
      if (this.pending.length > this.limits.partHeaderBytesMax) throw malformed("no opening boundary");
      return false;
    }
    this.consume(at + this.opening.length);
    this.state = "afterBoundary";
    return true;
  }

  private afterBoundary(): boolean {
    if (this.pending.length < 2) return false;
    const next = this.pending.subarray(0, 2).toString("latin1");
    if (next === "--") {
      this.consume(2);
      this.state = "done";
      return true;
    }
    if (next !== "\r\n") throw malformed("a boundary is followed by neither CRLF nor --");
    this.consume(2);
    this.state = "headers";
    return true;
  }

  private headers(events: FormEvent[]): boolean {
    const at = this.pending.indexOf(headerEnd);
    const block = at < 0 ? undefined : this.pending.subarray(0, at).toString("utf8");
    if (at < 0 || at > this.limits.partHeaderBytesMax) {
      if (at > this.limits.partHeaderBytesMax || this.pending.length > this.limits.partHeaderBytesMax + headerEnd.length) throw malformed(`a part's headers are over ${this.limits.partHeaderBytesMax} bytes`);
      return false;
    }
    this.consume(at + headerEnd.length);
    this.part = parsePartHeaders(block ?? "");
    if (this.part.name.toLowerCase() === "file") {
      this.state = "file";
      events.push({ kind: "file", name: this.part.name, filename: this.part.filename ?? "", contentType: this.part.contentType, dataOffset: this.base });
    } else {
      this.fields += 1;
      if (this.fields > this.limits.fieldsMax) throw malformed(`more than ${this.limits.fieldsMax} fields before the file`);
      this.state = "field";
    }
    return true;
  }

  private field(events: FormEvent[]): boolean {
    const at = this.pending.indexOf(this.delimiter);
    const budget = this.limits.fieldsBytesMax - this.fieldsBytes - (this.part?.name.length ?? 0);
    if (at < 0 ? this.pending.length - this.delimiter.length > budget : at > budget) throw malformed(`the form's fields are over ${this.limits.fieldsBytesMax} bytes together`);
    if (at < 0) return false;
    const name = this.part?.name ?? "";
    const value = this.pending.subarray(0, at).toString("utf8");
    this.fieldsBytes += name.length + at;
    events.push({ kind: "field", name, value });
    this.consume(at + this.delimiter.length);
    this.state = "afterBoundary";
    return true;
  }

  private file(events: FormEvent[]): boolean {
    const at = this.pending.indexOf(this.delimiter);
    // Without the delimiter, all but its length less one can go: those bytes cannot begin it.
    const take = at >= 0 ? at : Math.max(0, this.pending.length - (this.delimiter.length - 1));
    if (take > 0) {
      events.push({ kind: "data", data: new Uint8Array(this.pending.subarray(0, take)) });
      this.fileSize += take;
      this.consume(take);
    }
    if (at < 0) return false;
    this.consume(this.delimiter.length);
    events.push({ kind: "fileEnd", size: this.fileSize });
    // The file is the last field (S3): what follows is its closing boundary's "--" and epilogue.
    this.state = "afterBoundary";
    return true;
  }
}

/** A part's Content-Disposition name and filename, and its Content-Type. */
function parsePartHeaders(block: string): { name: string; filename: string | undefined; contentType: string } {
  let disposition: string | undefined;
  let contentType = "";
  for (const line of block.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) throw malformed(`the part header ${JSON.stringify(line.slice(0, 64))} is not name: value`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "content-disposition") disposition = value;
    if (name === "content-type") contentType = value;
  }
  if (disposition === undefined || !/^form-data\s*(;|$)/i.test(disposition)) throw malformed("a part has no Content-Disposition: form-data");
  const name = dispositionParam(disposition, "name");
  if (name === undefined || name === "") throw malformed("a part's Content-Disposition has no name");
  return { name, filename: dispositionParam(disposition, "filename"), contentType };
}

function dispositionParam(disposition: string, param: string): string | undefined {
  const match = new RegExp(`;\\s*${param}="((?:[^"\\\\]|\\\\.)*)"`, "i").exec(disposition) ?? new RegExp(`;\\s*${param}=([^;\\s]+)`, "i").exec(disposition);
  return match?.[1]?.replace(/\\(.)/g, "$1");
}
