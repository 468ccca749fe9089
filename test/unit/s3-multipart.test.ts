// The pure parts of S3 multipart (src/roles/router/s3/multipart.ts): the Complete body, the
// checks on the part list at their edges, the multipart ETag, and the part sizes' tag.
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { limits } from "../../src/lib/limits.ts";
import type { BallMetaWire } from "../../src/protocol/ball.ts";
import { checkParts, multipartEtag, parseCompleteBody, parsePartSizes, partSizesText } from "../../src/roles/router/s3/multipart.ts";
import { S3Reply } from "../../src/roles/router/s3/xml.ts";

function codeOf(work: () => unknown): string {
  try {
    work();
  } catch (error) {
    if (error instanceof S3Reply) return error.s3Code;
    throw error;
  }
  return "none";
}

function partBall(partNumber: number, size: number, etag: string): BallMetaWire {
  return {
    bucket: "_s3-multipart",
    key: `p/${"a".repeat(32)}/${String(partNumber).padStart(5, "0")}`,
    ballId: "x",
    objectId: `o${partNumber}`,
    version: 1,
    size,
    checksum: "0".repeat(64),
    contentType: "",
    tags: { "s3:etag": etag },
    rf: 2,
    createdMs: 0,
    chunkSize: limits.chunkBytesDefault,
    numChunks: Math.ceil(size / limits.chunkBytesDefault),
  };
}

describe("CompleteMultipartUpload's body", () => {
  test("parts in the order given, ETags without quotes (plain or &quot;), other elements ignored", () => {
    const body = `<?xml version="1.0"?><CompleteMultipartUpload><Part><ChecksumCRC32>AAAA</ChecksumCRC32><PartNumber>2</PartNumber><ETag>"AB"</ETag></Part><Part><ETag>&quot;cd&quot;</ETag><PartNumber> 1 </PartNumber></Part></CompleteMultipartUpload>`;
    expect(parseCompleteBody(body)).toEqual([{ partNumber: 2, etag: "ab" }, { partNumber: 1, etag: "cd" }]);
  });
  test("no part, a part without a number, or a number past the last is MalformedXML", () => {
    expect(codeOf(() => parseCompleteBody("<CompleteMultipartUpload></CompleteMultipartUpload>"))).toBe("MalformedXML");
    expect(codeOf(() => parseCompleteBody("<CompleteMultipartUpload><Part><ETag>x</ETag></Part></CompleteMultipartUpload>"))).toBe("MalformedXML");
    expect(codeOf(() => parseCompleteBody(`<Part><PartNumber>${limits.s3MultipartPartsMax + 1}</PartNumber><ETag>x</ETag></Part>`))).toBe("MalformedXML");
    expect(parseCompleteBody(`<Part><PartNumber>${limits.s3MultipartPartsMax}</PartNumber><ETag>x</ETag></Part>`)).toEqual([{ partNumber: limits.s3MultipartPartsMax, etag: "x" }]);
  });
});

describe("the part list's checks", () => {
  const min = limits.s3MultipartPartBytesMin;
  const stored = new Map([
    [1, partBall(1, min, "e1")],
    [2, partBall(2, min - 1, "e2")],
    [3, partBall(3, 1, "e3")],
  ]);
  test("every part but the last at least s3MultipartPartBytesMin: exactly it passes, one byte less is EntityTooSmall", () => {
    expect(checkParts([{ partNumber: 1, etag: "e1" }, { partNumber: 3, etag: "e3" }], stored).size).toBe(min + 1);
    expect(codeOf(() => checkParts([{ partNumber: 2, etag: "e2" }, { partNumber: 3, etag: "e3" }], stored))).toBe("EntityTooSmall");
    expect(checkParts([{ partNumber: 2, etag: "e2" }], stored).size).toBe(min - 1); // the last part may be small
  });
  test("order before anything else; a missing part or a wrong ETag is InvalidPart", () => {
    expect(codeOf(() => checkParts([{ partNumber: 3, etag: "e3" }, { partNumber: 2, etag: "e2" }], stored))).toBe("InvalidPartOrder");
    expect(codeOf(() => checkParts([{ partNumber: 1, etag: "e1" }, { partNumber: 1, etag: "e1" }], stored))).toBe("InvalidPartOrder");
    expect(codeOf(() => checkParts([{ partNumber: 4, etag: "e4" }], stored))).toBe("InvalidPart");
    expect(codeOf(() => checkParts([{ partNumber: 1, etag: "e2" }], stored))).toBe("InvalidPart");
  });
});

test("the multipart ETag is the MD5 of the parts' binary MD5s, then -N", () => {
  const a = createHash("md5").update("a").digest("hex");
  const b = createHash("md5").update("b").digest("hex");
  const expected = createHash("md5").update(Buffer.concat([Buffer.from(a, "hex"), Buffer.from(b, "hex")])).digest("hex");
  expect(multipartEtag([a, b])).toBe(`${expected}-2`);
});

describe("part sizes in a tag", () => {
  test("uniform parts compactly, any count", () => {
    const sizes = [...Array<number>(limits.s3MultipartPartsMax - 1).fill(8 * 1024 * 1024), 3];
    const text = partSizesText(sizes);
    expect(text).toBe(`${limits.s3MultipartPartsMax}x${8 * 1024 * 1024}+3`);
    expect(parsePartSizes(text ?? "")).toEqual(sizes);
    expect(parsePartSizes(partSizesText([7]) ?? "")).toEqual([7]);
  });
  test("mixed sizes as a list up to tagBytesMax characters, none past it", () => {
    // 127 seven-digit sizes and one of eight, with 127 commas: exactly 1024 characters.
    expect(limits.tagBytesMax).toBe(1024);
    const fits = [...Array<number>(126).fill(1_000_000), 5_000_000, 12_345_678];
    const exact = partSizesText(fits) ?? "";
    expect(exact.length).toBe(limits.tagBytesMax);
    expect(parsePartSizes(exact)).toEqual(fits);
    expect(partSizesText([...fits.slice(0, -1), 123_456_789])).toBeUndefined();
  });
});
