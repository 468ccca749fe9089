// aws-chunked bodies: the framing S3 clients use to stream an upload whose hash they cannot
// know up front, each chunk signed in a chain from the request's own signature (the seed):
//
//   signed:    <hex size>;chunk-signature=<sig>\r\n <bytes> \r\n  … 0;chunk-signature=<sig>\r\n
//              then \r\n (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), or trailer lines and \r\n
//              (…-TRAILER: x-amz-checksum-<alg>:<b64>\r\n x-amz-trailer-signature:<sig>\r\n \r\n)
//   unsigned:  <hex size>\r\n <bytes> \r\n … 0\r\n <trailer lines> \r\n (STREAMING-UNSIGNED-PAYLOAD-TRAILER)
//
//   chunk string to sign   = AWS4-HMAC-SHA256-PAYLOAD \n date \n scope \n previous signature \n
//                            sha256("") \n sha256(chunk bytes)
//   trailer string to sign = AWS4-HMAC-SHA256-TRAILER \n date \n scope \n previous signature \n
//                            sha256("name:value\n" for each trailing header)
//
// Pure, like src/protocol/frame.ts: push() bytes in any split, get the payload's bytes back. A
// chunk header line and the trailer section are bounded (limits.s3ChunkHeaderBytesMax,
// s3ChunkTrailerBytesMax) and nothing else is buffered: a chunk's bytes are handed on as they
// arrive and hashed on the way, and its signature is checked when its last byte is in. So bytes
// handed on are not yet known good: the gateway stores nothing as an object until end() has
// returned (a tampered chunk throws SignatureDoesNotMatch at that chunk). The trailing
// checksums are returned for the gateway to compare with what it computed over the payload.
import { createHash, type Hash } from "node:crypto";
import { assert } from "../lib/assert.ts";
import { limits } from "../lib/limits.ts";
import { S3Error } from "./errors.ts";
import { emptySha256, hexEqual, hmacHex, sha256Hex, sigv4Algorithm, type VerifiedRequest } from "./sigv4.ts";

/** What a ChunkSignatureVerifier needs of the verified request. */
export type ChunkedStream = Pick<VerifiedRequest, "payload" | "signingKey" | "seedSignature" | "amzDate" | "scope" | "decodedContentLength" | "trailerNames">;

export interface ChunkedBodyEnd {
  /** Payload bytes handed on, equal to x-amz-decoded-content-length. */
  payloadBytes: number;
  /** Chunks read, the final empty one included. */
  chunks: number;
  /** The trailing headers (lower-case names), x-amz-trailer-signature left out. */
  trailers: Record<string, string>;
}

type State = "header" | "data" | "dataEnd" | "trailer" | "done";
const CR = 0x0d;
const LF = 0x0a;
const trailerSignatureName = "x-amz-trailer-signature";

export class ChunkSignatureVerifier {
  private readonly stream: ChunkedStream;
  private readonly signed: boolean;
  private state: State = "header";
  /** The header line (or trailer line) being read, CRLF included. */
  private line: Uint8Array;
  private lineBytes = 0;
  private trailerSectionBytes = 0;
  private readonly trailers = new Map<string, string>();
  private trailerSignature: string | undefined;
  private dataRemaining = 0;
  private dataEndBytes = 0;
  private hash: Hash | undefined;
  private claimedSignature = "";
  private previousSignature: string;
  private chunkIndex = 0;
  private payloadBytes = 0;
  private failure: S3Error | undefined;

  constructor(stream: ChunkedStream) {
    assert(stream.payload.startsWith("streaming-"), "ChunkSignatureVerifier is for aws-chunked bodies");
    assert(stream.decodedContentLength !== undefined, "an aws-chunked body has x-amz-decoded-content-length");
    this.stream = stream;
    this.signed = stream.payload !== "streaming-unsigned-trailer";
    this.previousSignature = stream.seedSignature;
    this.line = new Uint8Array(limits.s3ChunkHeaderBytesMax + 2);
  }

  get done(): boolean {
    return this.state === "done";
  }

  /**
   * The payload bytes in `bytes` (views of it: hand over buffers that are not reused). Throws an
   * S3Error for a bad chunk; after one the body is unusable and every call throws it again.
   */
  push(bytes: Uint8Array): Uint8Array[] {
    if (this.failure !== undefined) throw this.failure;
    try {
      return this.consume(bytes);
    } catch (error) {
      if (error instanceof S3Error) this.failure = error;
      throw error;
    }
  }

  /** The body has ended: checks it was whole and returns what it held. */
  end(): ChunkedBodyEnd {
    if (this.failure !== undefined) throw this.failure;
    if (this.state !== "done") {
      this.failure = new S3Error("IncompleteBody", `The aws-chunked body ended in chunk ${this.chunkIndex}, before its final (empty) chunk and trailer: the upload was cut short`);
      throw this.failure;
    }
    return { payloadBytes: this.payloadBytes, chunks: this.chunkIndex, trailers: Object.fromEntries(this.trailers) };
  }

  private consume(bytes: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let at = 0;
    while (at < bytes.length) {
      if (this.state === "header" || this.state === "trailer") at = this.readLine(bytes, at);
      else if (this.state === "data") at = this.readData(bytes, at, out);
      else if (this.state === "dataEnd") at = this.readDataEnd(bytes, at);
      else throw new S3Error("InvalidRequest", "The aws-chunked body goes on after its final chunk and trailer");
    }
    return out;
  }

  /** Gathers a line up to its LF, bounded; a complete line is handled. */
  private readLine(bytes: Uint8Array, at: number): number {
    const lf = bytes.indexOf(LF, at);
    const end = lf < 0 ? bytes.length : lf + 1;
    const take = end - at;
    if (this.state === "header" && this.lineBytes + take > this.line.length) {
      throw new S3Error("InvalidRequest", `An aws-chunked chunk header is longer than ${limits.s3ChunkHeaderBytesMax} bytes (chunk ${this.chunkIndex}): this is not an aws-chunked body`);
    }
    if (this.state === "trailer") {
      this.trailerSectionBytes += take;
      if (this.trailerSectionBytes > limits.s3ChunkTrailerBytesMax) throw new S3Error("InvalidRequest", `The aws-chunked trailer is longer than ${limits.s3ChunkTrailerBytesMax} bytes`);
      if (this.lineBytes + take > this.line.length) this.line = grow(this.line, this.lineBytes + take);
    }
    this.line.set(bytes.subarray(at, end), this.lineBytes);
    this.lineBytes += take;
    if (lf >= 0) {
      const text = new TextDecoder("latin1").decode(this.line.subarray(0, this.lineBytes));
      this.lineBytes = 0;
      if (this.state === "header") this.onHeader(text);
      else this.onTrailerLine(text);
    }
    return end;
  }

  private onHeader(line: string): void {
    if (!line.endsWith("\r\n")) throw new S3Error("InvalidRequest", `aws-chunked chunk ${this.chunkIndex}'s header does not end with CRLF`);
    const match = /^([0-9a-fA-F]{1,16})(;.*)?$/.exec(line.slice(0, -2));
    if (match === null) throw new S3Error("InvalidRequest", `aws-chunked chunk ${this.chunkIndex}'s header does not start with its size in hex`);
    const size = Number.parseInt(match[1] ?? "", 16);
    const limit = this.stream.decodedContentLength ?? 0;
    if (!Number.isSafeInteger(size) || this.payloadBytes + size > limit) {
      throw new S3Error("InvalidRequest", `aws-chunked chunk ${this.chunkIndex} would take the payload past its x-amz-decoded-content-length of ${limit} bytes`);
    }
    if (this.signed) this.claimedSignature = chunkSignatureOf(match[2] ?? "", this.chunkIndex);
    if (size === 0) {
      this.verifyChunk(sha256Hex(""));
      if (this.payloadBytes !== limit) throw new S3Error("IncompleteBody", `You did not provide the number of bytes specified by x-amz-decoded-content-length: ${this.payloadBytes} of ${limit}`);
      this.state = "trailer";
      return;
    }
    this.dataRemaining = size;
    this.hash = this.signed ? createHash("sha256") : undefined;
    this.state = "data";
  }

  private readData(bytes: Uint8Array, at: number, out: Uint8Array[]): number {
    const take = Math.min(this.dataRemaining, bytes.length - at);
    const piece = bytes.subarray(at, at + take);
    this.hash?.update(piece);
    out.push(piece);
    this.dataRemaining -= take;
    this.payloadBytes += take;
    if (this.dataRemaining === 0) {
      this.dataEndBytes = 0;
      this.state = "dataEnd";
    }
    return at + take;
  }

  /** The CRLF after a chunk's bytes; then its signature is checked. */
  private readDataEnd(bytes: Uint8Array, at: number): number {
    const expected = this.dataEndBytes === 0 ? CR : LF;
    if (bytes[at] !== expected) throw new S3Error("InvalidRequest", `aws-chunked chunk ${this.chunkIndex} is longer than its header said (no CRLF after its bytes)`);
    this.dataEndBytes += 1;
    if (this.dataEndBytes === 2) {
      this.verifyChunk(this.hash?.digest("hex") ?? "");
      this.hash = undefined;
      this.state = "header";
    }
    return at + 1;
  }

  private verifyChunk(dataSha256: string): void {
    const index = this.chunkIndex;
    this.chunkIndex += 1;
    if (!this.signed) return;
    const stringToSign = [`${sigv4Algorithm}-PAYLOAD`, this.stream.amzDate, this.stream.scope, this.previousSignature, emptySha256, dataSha256].join("\n");
    this.previousSignature = this.checkSignature(stringToSign, this.claimedSignature, `chunk ${index}`);
  }

  private checkSignature(stringToSign: string, provided: string, what: string): string {
    const expected = hmacHex(this.stream.signingKey, stringToSign);
    if (!hexEqual(expected, provided)) {
      throw new S3Error("SignatureDoesNotMatch", `The ${what} signature of the aws-chunked body does not match: the body was changed after it was signed, or signed with another key`, { StringToSign: stringToSign, SignatureProvided: provided });
    }
    return expected;
  }

  private onTrailerLine(raw: string): void {
    const line = raw.endsWith("\r\n") ? raw.slice(0, -2) : raw.slice(0, -1);
    if (line === "") return this.finishTrailer();
    if (this.trailerSignature !== undefined) throw new S3Error("InvalidRequest", `${trailerSignatureName} must be the last trailing header`);
    const colon = line.indexOf(":");
    if (colon <= 0) throw new S3Error("InvalidRequest", "An aws-chunked trailer line is not name:value");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === trailerSignatureName && this.stream.payload === "streaming-signed-trailer") {
      this.trailerSignature = value;
      return;
    }
    if (!this.stream.trailerNames.includes(name)) throw new S3Error("InvalidRequest", `The trailing header ${JSON.stringify(name.slice(0, 64))} was not announced in x-amz-trailer`);
    if (this.trailers.has(name)) throw new S3Error("InvalidRequest", `The trailing header ${name} is sent twice`);
    this.trailers.set(name, value);
  }

  private finishTrailer(): void {
    const missing = this.stream.trailerNames.filter((name) => !this.trailers.has(name));
    if (missing.length > 0) throw new S3Error("IncompleteBody", `The aws-chunked body ended without the trailing ${missing.join(", ")} that x-amz-trailer announced`);
    if (this.stream.payload === "streaming-signed-trailer") {
      if (this.trailerSignature === undefined) throw new S3Error("SignatureDoesNotMatch", `The aws-chunked trailer has no ${trailerSignatureName}`);
      const canonical = [...this.trailers].map(([name, value]) => `${name}:${value}\n`).join("");
      const stringToSign = [`${sigv4Algorithm}-TRAILER`, this.stream.amzDate, this.stream.scope, this.previousSignature, sha256Hex(canonical)].join("\n");
      this.previousSignature = this.checkSignature(stringToSign, this.trailerSignature, "trailer");
    }
    this.state = "done";
  }
}

function chunkSignatureOf(extensions: string, index: number): string {
  const match = /^;chunk-signature=([0-9a-f]{64})$/.exec(extensions);
  if (match === null) throw new S3Error("InvalidRequest", `aws-chunked chunk ${index}'s header has no chunk-signature=<64 hex digits>`);
  return match[1] ?? "";
}

function grow(buffer: Uint8Array, atLeast: number): Uint8Array {
  const bigger = new Uint8Array(Math.max(atLeast, buffer.length * 2));
  bigger.set(buffer);
  return bigger;
}
