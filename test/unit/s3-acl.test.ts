// Canned ACLs, pure (src/s3/acl.ts): the x-amz-acl header, the AccessControlPolicy answered by
// GetAcl, and which PutAcl bodies are taken (only those that say a canned ACL), with the XML
// reader under them (src/s3/xml-tree.ts).
import { describe, expect, test } from "bun:test";
import { aclPolicyXml, allUsersUri, cannedAclOf, cannedAclOfPolicy } from "../../src/s3/acl.ts";
import { S3Error } from "../../src/s3/errors.ts";
import { parseXml } from "../../src/s3/xml-tree.ts";

function s3CodeOf(work: () => unknown): string {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(S3Error);
    return (error as S3Error).s3Code;
  }
  throw new Error("expected an S3Error");
}

const xsi = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"';
const ownerGrant = `<Grant><Grantee ${xsi} xsi:type="CanonicalUser"><ID>abc</ID></Grantee><Permission>FULL_CONTROL</Permission></Grant>`;
const publicGrant = `<Grant><Grantee ${xsi} xsi:type="Group"><URI>${allUsersUri}</URI></Grantee><Permission>READ</Permission></Grant>`;
const policy = (grants: string) => `<?xml version="1.0" encoding="UTF-8"?><AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>abc</ID></Owner><AccessControlList>${grants}</AccessControlList></AccessControlPolicy>`;

describe("x-amz-acl", () => {
  test("absent is undefined (the default applies); private and public-read are taken", () => {
    expect(cannedAclOf(new Headers())).toBeUndefined();
    expect(cannedAclOf(new Headers({ "x-amz-acl": "private" }))).toBe("private");
    expect(cannedAclOf(new Headers({ "x-amz-acl": "public-read" }))).toBe("public-read");
  });

  test.each(["public-read-write", "authenticated-read", "bucket-owner-full-control", "log-delivery-write"])("%s is NotImplemented", (acl) => {
    expect(s3CodeOf(() => cannedAclOf(new Headers({ "x-amz-acl": acl })))).toBe("NotImplemented");
  });

  test("a name S3 does not have is InvalidArgument; grant headers are NotImplemented", () => {
    expect(s3CodeOf(() => cannedAclOf(new Headers({ "x-amz-acl": "public" })))).toBe("InvalidArgument");
    expect(s3CodeOf(() => cannedAclOf(new Headers({ "x-amz-grant-read": 'uri="http://acs.amazonaws.com/groups/global/AllUsers"' })))).toBe("NotImplemented");
  });
});

describe("AccessControlPolicy", () => {
  test("GetAcl's document: the owner FULL_CONTROL, and AllUsers READ only for public-read; it reads back as the same canned ACL", () => {
    const closed = aclPolicyXml("private", "MXOWNER");
    const open = aclPolicyXml("public-read", "MXOWNER");
    expect(closed).toContain("<Permission>FULL_CONTROL</Permission>");
    expect(closed).not.toContain(allUsersUri);
    expect(open).toContain(`<URI>${allUsersUri}</URI></Grantee><Permission>READ</Permission>`);
    expect(cannedAclOfPolicy(closed)).toBe("private");
    expect(cannedAclOfPolicy(open)).toBe("public-read");
    expect(parseXml(aclPolicyXml("private", `a<b&"c'`)).children[0]?.children[0]?.text).toBe(`a<b&"c'`);
  });

  test("a body taken only when it says a canned ACL, in any grant order", () => {
    expect(cannedAclOfPolicy(policy(ownerGrant))).toBe("private");
    expect(cannedAclOfPolicy(policy(publicGrant + ownerGrant))).toBe("public-read");
  });

  test.each([
    ["a named user's READ", ownerGrant + `<Grant><Grantee ${xsi} xsi:type="CanonicalUser"><ID>other</ID></Grantee><Permission>READ</Permission></Grant>`],
    ["AllUsers WRITE", ownerGrant + publicGrant.replace("READ", "WRITE")],
    ["AuthenticatedUsers READ", ownerGrant + publicGrant.replace("AllUsers", "AuthenticatedUsers")],
    ["no grant at all", ""],
    ["an email grantee", ownerGrant + `<Grant><Grantee ${xsi} xsi:type="AmazonCustomerByEmail"><EmailAddress>a@b.c</EmailAddress></Grantee><Permission>READ</Permission></Grant>`],
  ])("%s is NotImplemented", (_what, grants) => {
    expect(s3CodeOf(() => cannedAclOfPolicy(policy(grants)))).toBe("NotImplemented");
  });

  test("a body that is not an AccessControlPolicy, or not XML, is refused as malformed", () => {
    expect(s3CodeOf(() => cannedAclOfPolicy("<LifecycleConfiguration/>"))).toBe("MalformedACLError");
    expect(s3CodeOf(() => cannedAclOfPolicy("<AccessControlPolicy><AccessControlList>"))).toBe("MalformedXML");
    expect(s3CodeOf(() => cannedAclOfPolicy("not xml"))).toBe("MalformedXML");
    expect(s3CodeOf(() => cannedAclOfPolicy('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><AccessControlPolicy>&e;</AccessControlPolicy>'))).toBe("MalformedXML");
  });
});

describe("the XML reader", () => {
  test("elements, attributes, entities, self-closing tags, comments and the declaration", () => {
    const root = parseXml('<?xml version="1.0"?>\n<!-- c --><a:Root x="1"><B>t &amp; &#x41;&#66;</B><C/><!-- inside --></a:Root>\n');
    expect(root.name).toBe("Root");
    expect(root.attributes).toEqual({ x: "1" });
    expect(root.children.map((child) => [child.name, child.text])).toEqual([["B", "t & AB"], ["C", ""]]);
  });

  test.each([
    ["a mismatched close", "<A><B></A></B>"],
    ["two roots", "<A/><B/>"],
    ["an unclosed element", "<A><B/>"],
    ["text outside the root", "x<A/>"],
    ["an unknown entity", "<A>&nbsp;</A>"],
    ["nesting past the bound", `${"<A>".repeat(40)}${"</A>".repeat(40)}`],
    ["an empty body", ""],
  ])("%s is MalformedXML", (_what, text) => {
    expect(s3CodeOf(() => parseXml(text))).toBe("MalformedXML");
  });
});
