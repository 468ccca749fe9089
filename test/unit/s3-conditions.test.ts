// The pure parts of the S3 object operations: conditional requests' precedence, the
// DeleteObjects document reader, and x-amz-copy-source parsing.
import { describe, expect, test } from "bun:test";
import { etagListMatches, evaluateConditions, readConditions, requireCopySourceConditions } from "../../src/roles/router/s3/conditions.ts";
import { parseDeleteXml } from "../../src/roles/router/s3/delete-objects.ts";
import { parseCopySource } from "../../src/roles/router/s3/copy.ts";
import { S3Reply } from "../../src/roles/router/s3/xml.ts";
import { limits } from "../../src/lib/limits.ts";

const createdMs = Date.parse("2026-01-02T03:04:05.678Z");
const etag = '"abc"';
const requestWith = (headers: Record<string, string>) => ({ request: new Request("http://x/b/k", { headers }) });
const codeOf = (work: () => unknown): string => {
  try {
    work();
  } catch (error) {
    if (error instanceof S3Reply) return `${error.httpStatus} ${error.s3Code}`;
    throw error;
  }
  return "no error";
};

describe("conditions", () => {
  test("ETag lists: quoted or not, several, weak, *", () => {
    expect(etagListMatches('"abc"', etag)).toBe(true);
    expect(etagListMatches("abc", etag)).toBe(true);
    expect(etagListMatches('"x", "abc"', etag)).toBe(true);
    expect(etagListMatches('W/"abc"', etag)).toBe(true);
    expect(etagListMatches("*", etag)).toBe(true);
    expect(etagListMatches('"abcd"', etag)).toBe(false);
  });

  test("S3's precedence", () => {
    const at = (headers: Record<string, string>) => codeOf(() => evaluateConditions(requestWith(headers), { createdMs }, etag, readConditions));
    const outcome = (headers: Record<string, string>) => evaluateConditions(requestWith(headers), { createdMs }, etag, readConditions);
    expect(at({ "if-match": '"zzz"' })).toBe("412 PreconditionFailed");
    expect(at({ "if-unmodified-since": "Fri, 02 Jan 2026 03:04:04 GMT" })).toBe("412 PreconditionFailed");
    expect(outcome({ "if-unmodified-since": "Fri, 02 Jan 2026 03:04:05 GMT" })).toBe("proceed"); // whole seconds: not modified after
    expect(outcome({ "if-match": etag, "if-unmodified-since": "Thu, 01 Jan 2026 00:00:00 GMT" })).toBe("proceed");
    expect(outcome({ "if-none-match": etag })).toBe("not-modified");
    expect(outcome({ "if-modified-since": "Fri, 02 Jan 2026 03:04:05 GMT" })).toBe("not-modified");
    expect(outcome({ "if-modified-since": "Fri, 02 Jan 2026 03:04:04 GMT" })).toBe("proceed");
    expect(outcome({ "if-none-match": '"other"', "if-modified-since": "Sat, 03 Jan 2026 00:00:00 GMT" })).toBe("proceed");
    expect(outcome({ "if-modified-since": "not a date" })).toBe("proceed"); // ignored, as S3 does
    expect(at({ "if-match": '"zzz"', "if-none-match": etag })).toBe("412 PreconditionFailed"); // 412 before 304
  });

  test("a copy source's not-modified is 412", () => {
    expect(codeOf(() => requireCopySourceConditions(requestWith({ "x-amz-copy-source-if-none-match": etag }), { createdMs }, etag))).toBe("412 PreconditionFailed");
    expect(codeOf(() => requireCopySourceConditions(requestWith({ "x-amz-copy-source-if-match": etag }), { createdMs }, etag))).toBe("no error");
  });
});

describe("the DeleteObjects document", () => {
  test("keys with entities and character references, Quiet, a VersionId of null", () => {
    const parsed = parseDeleteXml('<?xml version="1.0" encoding="UTF-8"?>\n<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet><Object><Key>a&amp;b&lt;c&#x41;&#66;</Key></Object>\n <Object><Key>é é</Key><VersionId>null</VersionId></Object></Delete>');
    expect(parsed).toEqual({ quiet: true, keys: ["a&b<cAB", "é é"] });
  });

  test("malformed documents are MalformedXML; versions NotImplemented", () => {
    expect(codeOf(() => parseDeleteXml("<Nope/>"))).toBe("400 MalformedXML");
    expect(codeOf(() => parseDeleteXml("<Delete></Delete>"))).toBe("400 MalformedXML");
    expect(codeOf(() => parseDeleteXml("<Delete><Object></Object></Delete>"))).toBe("400 MalformedXML");
    expect(codeOf(() => parseDeleteXml("<Delete><Object><Key>a</Key><Extra>1</Extra></Object></Delete>"))).toBe("400 MalformedXML");
    expect(codeOf(() => parseDeleteXml("<Delete><Object><Key>a&bogus;</Key></Object></Delete>"))).toBe("400 MalformedXML");
    expect(codeOf(() => parseDeleteXml("<Delete><Object><Key>a&#x110000;</Key></Object></Delete>"))).toBe("400 MalformedXML");
    expect(codeOf(() => parseDeleteXml("<Delete><Object><Key>a</Key><VersionId>v1</VersionId></Object></Delete>"))).toBe("501 NotImplemented");
  });

  test("at most s3DeleteObjectsKeysMax keys", () => {
    const doc = (count: number) => `<Delete>${"<Object><Key>k</Key></Object>".repeat(count)}</Delete>`;
    expect(parseDeleteXml(doc(limits.s3DeleteObjectsKeysMax)).keys).toHaveLength(limits.s3DeleteObjectsKeysMax);
    expect(codeOf(() => parseDeleteXml(doc(limits.s3DeleteObjectsKeysMax + 1)))).toBe("400 MalformedXML");
  });
});

describe("x-amz-copy-source", () => {
  test("with or without a leading slash, percent-encoded, versionId null", () => {
    expect(parseCopySource("b/k")).toEqual({ bucket: "b", key: "k" });
    expect(parseCopySource("/b/a%20b/c%26d%C3%A9")).toEqual({ bucket: "b", key: "a b/c&dé" });
    expect(parseCopySource("b/k?versionId=null")).toEqual({ bucket: "b", key: "k" });
    expect(codeOf(() => parseCopySource("b/k?versionId=3"))).toBe("501 NotImplemented");
    expect(codeOf(() => parseCopySource("just-a-bucket"))).toBe("400 InvalidArgument");
    expect(codeOf(() => parseCopySource("b/%E0%A4%A"))).toBe("400 InvalidArgument");
  });
});
