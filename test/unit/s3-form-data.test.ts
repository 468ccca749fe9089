// The PostObject form parser, fed one body in every split: the fields whole, the file's bytes
// exactly, wherever the pieces break (inside a boundary, a header, a CRLF).
import { describe, expect, test } from "bun:test";
import { FormDataParser, formBoundary, type FormEvent, type FormLimits } from "../../src/s3/form-data.ts";
import { S3Error } from "../../src/s3/errors.ts";
import { limits } from "../../src/lib/limits.ts";
import { randomBytes, seededRandom } from "../support/random.ts";

const boundary = "----formBoundary7MA4YWxkTrZu0gW";
const formLimits: FormLimits = { fieldsBytesMax: limits.s3PostFieldsBytesMax, fieldsMax: limits.s3PostFieldsMax, partHeaderBytesMax: limits.s3PostPartHeaderBytesMax };

function formBody(fields: [string, string][], file: Uint8Array, filename = "a.bin"): Uint8Array {
  const head = fields.map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`).join("");
  const fileHead = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`;
  return Buffer.concat([Buffer.from(head + fileHead), file, Buffer.from(`\r\n--${boundary}--\r\n`)]);
}

function parse(body: Uint8Array, cuts: number[], parserLimits = formLimits): { fields: [string, string][]; file: Uint8Array; events: FormEvent[] } {
  const parser = new FormDataParser(boundary, parserLimits);
  const events: FormEvent[] = [];
  let at = 0;
  for (const cut of [...cuts, body.byteLength]) {
    events.push(...parser.push(body.subarray(at, cut)));
    at = cut;
  }
  parser.end();
  const fields = events.flatMap((event) => (event.kind === "field" ? [[event.name, event.value] as [string, string]] : []));
  const file = Buffer.concat(events.flatMap((event) => (event.kind === "data" ? [event.data] : [])));
  return { fields, file, events };
}

describe("formBoundary", () => {
  test("the boundary of multipart/form-data, quoted or not; undefined for anything else", () => {
    expect(formBoundary(`multipart/form-data; boundary=${boundary}`)).toBe(boundary);
    expect(formBoundary('Multipart/Form-Data; charset=utf-8; boundary="a b"')).toBe("a b");
    expect(formBoundary("application/xml")).toBeUndefined();
    expect(formBoundary("multipart/form-data")).toBeUndefined();
    expect(formBoundary(`multipart/form-data; boundary=${"x".repeat(71)}`)).toBeUndefined();
    expect(formBoundary(null)).toBeUndefined();
  });
});

describe("FormDataParser", () => {
  const fields: [string, string][] = [["key", "uploads/${filename}"], ["x-amz-meta-colour", "azul é"], ["policy", "eyJ9"]];
  // The file holds the boundary's prefix and CRLFs, so a split parser must not take them for its end.
  const file = Buffer.concat([Buffer.from(`\r\n--${boundary.slice(0, 10)}\r\n`), Buffer.from(randomBytes(seededRandom("form-data file").random, 3000)), Buffer.from("\r\n-")]);
  const body = formBody(fields, file);

  test("whole: fields in order, the file byte-exact, its offset and size", () => {
    const got = parse(body, []);
    expect(got.fields).toEqual(fields);
    expect(Buffer.from(got.file).equals(file)).toBe(true);
    const start = got.events.find((event) => event.kind === "file");
    expect(start?.kind === "file" && start.filename).toBe("a.bin");
    expect(start?.kind === "file" && body.subarray(start.dataOffset, start.dataOffset + file.byteLength)).toEqual(new Uint8Array(file));
    expect(got.events.at(-1)).toEqual({ kind: "fileEnd", size: file.byteLength });
  });

  test("every split in two, and a byte at a time: the same fields and file", () => {
    for (let cut = 0; cut <= body.byteLength; cut += 1) {
      const got = parse(body, [cut]);
      expect(got.fields).toEqual(fields);
      expect(Buffer.from(got.file).equals(file)).toBe(true);
    }
    const bytewise = parse(body, Array.from({ length: body.byteLength }, (_, index) => index));
    expect(bytewise.fields).toEqual(fields);
    expect(Buffer.from(bytewise.file).equals(file)).toBe(true);
  });

  test("random splits (seeded)", () => {
    const { random } = seededRandom("form-data splits");
    for (let round = 0; round < 200; round += 1) {
      const cuts = Array.from({ length: 1 + Math.floor(random() * 8) }, () => Math.floor(random() * body.byteLength)).sort((a, b) => a - b);
      const got = parse(body, cuts);
      expect(got.fields).toEqual(fields);
      expect(Buffer.from(got.file).equals(file)).toBe(true);
    }
  });

  test("an empty file", () => {
    const got = parse(formBody([["key", "k"]], new Uint8Array(0)), []);
    expect(got.file.byteLength).toBe(0);
    expect(got.events.at(-1)).toEqual({ kind: "fileEnd", size: 0 });
  });

  test("fields at s3PostFieldsBytesMax together are read; one byte over is refused", () => {
    const name = "x-amz-meta-big";
    const at = formBody([[name, "v".repeat(limits.s3PostFieldsBytesMax - name.length)]], new Uint8Array(1));
    expect(parse(at, []).fields[0]?.[1].length).toBe(limits.s3PostFieldsBytesMax - name.length);
    const over = formBody([[name, "v".repeat(limits.s3PostFieldsBytesMax - name.length + 1)]], new Uint8Array(1));
    expect(() => parse(over, [])).toThrow(S3Error);
    expect(() => parse(over, [])).toThrow(/over 20480 bytes together/);
  });

  test("more than s3PostFieldsMax fields, or a part header over its bound, is refused", () => {
    const many = Array.from({ length: limits.s3PostFieldsMax + 1 }, (_, index) => [`f${index}`, "v"] as [string, string]);
    expect(() => parse(formBody(many.slice(0, -1), new Uint8Array(1)), [])).not.toThrow();
    expect(() => parse(formBody(many, new Uint8Array(1)), [])).toThrow(/more than 64 fields/);
    const longName = formBody([["n".repeat(limits.s3PostPartHeaderBytesMax), "v"]], new Uint8Array(1));
    expect(() => parse(longName, [])).toThrow(/headers are over/);
  });

  test("a body cut short, or without Content-Disposition, is refused", () => {
    expect(() => parse(body.subarray(0, body.byteLength - 10), [])).toThrow(/ends inside the file/);
    const bad = Buffer.from(`--${boundary}\r\nContent-Type: text/plain\r\n\r\nx\r\n--${boundary}--\r\n`);
    expect(() => parse(bad, [])).toThrow(/Content-Disposition/);
  });
});
