// S3 canned ACLs (issue 13): `private`, the default, and `public-read`. What they mean here is
// what S3 means: a public-read object may be read (GET, HEAD) by anyone; a public-read bucket
// may be listed by anyone; nothing else is ever anonymous. The other canned ACLs and grants to
// named users are not built: they answer NotImplemented, never a silent private.
//
// Pure: the x-amz-acl header, the AccessControlPolicy document S3 answers GetAcl with, and a
// PutAcl body, which is taken only when it says exactly what one of the two canned ACLs says.
import { S3Error } from "./errors.ts";
import { childrenNamed, onlyChild, parseXml, type XmlElement } from "./xml-tree.ts";

export const cannedAcls = ["private", "public-read"] as const;
export type CannedAcl = (typeof cannedAcls)[number];

/** The canned ACLs S3 has that the gateway does not build. */
const otherCannedAcls = ["public-read-write", "authenticated-read", "aws-exec-read", "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write"];

/** The group S3 names "everyone" by, anonymous requests included. */
export const allUsersUri = "http://acs.amazonaws.com/groups/global/AllUsers";
const xsiNamespace = "http://www.w3.org/2001/XMLSchema-instance";

export function isCannedAcl(value: string): value is CannedAcl {
  return (cannedAcls as readonly string[]).includes(value);
}

/**
 * A request's x-amz-acl, checked: undefined when absent (the operation's default applies),
 * NotImplemented for S3's other canned ACLs and for grant headers, InvalidArgument for a name
 * S3 does not have.
 */
export function cannedAclOf(headers: Headers): CannedAcl | undefined {
  for (const name of ["x-amz-grant-read", "x-amz-grant-write", "x-amz-grant-read-acp", "x-amz-grant-write-acp", "x-amz-grant-full-control"]) {
    if (headers.has(name)) throw new S3Error("NotImplemented", `${name} is not implemented by the mictlanx S3 gateway: only the canned ACLs private and public-read (x-amz-acl) are`);
  }
  const value = headers.get("x-amz-acl");
  if (value === null) return undefined;
  const acl = value.trim();
  if (isCannedAcl(acl)) return acl;
  if (otherCannedAcls.includes(acl)) throw new S3Error("NotImplemented", `the canned ACL ${acl} is not implemented by the mictlanx S3 gateway: only private and public-read are`);
  throw new S3Error("InvalidArgument", `x-amz-acl ${JSON.stringify(acl)} is not a canned ACL (private or public-read)`);
}

function xmlText(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c] ?? c);
}

/** The AccessControlPolicy S3 answers GetBucketAcl/GetObjectAcl with: the owner FULL_CONTROL, and AllUsers READ for public-read. */
export function aclPolicyXml(acl: CannedAcl, owner: string): string {
  const id = `<ID>${xmlText(owner)}</ID><DisplayName>${xmlText(owner)}</DisplayName>`;
  const ownerGrant = `<Grant><Grantee xmlns:xsi="${xsiNamespace}" xsi:type="CanonicalUser">${id}</Grantee><Permission>FULL_CONTROL</Permission></Grant>`;
  const publicGrant = acl === "public-read" ? `<Grant><Grantee xmlns:xsi="${xsiNamespace}" xsi:type="Group"><URI>${allUsersUri}</URI></Grantee><Permission>READ</Permission></Grant>` : "";
  return `<?xml version="1.0" encoding="UTF-8"?>\n<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner>${id}</Owner><AccessControlList>${ownerGrant}${publicGrant}</AccessControlList></AccessControlPolicy>`;
}

function granteeKind(grant: XmlElement): string {
  const grantee = onlyChild(grant, "Grantee");
  if (!grantee) throw new S3Error("MalformedACLError", "The XML you provided was not well-formed or did not validate against our published schema: a Grant without a Grantee");
  const type = grantee.attributes["xsi:type"] ?? Object.entries(grantee.attributes).find(([name]) => name.endsWith(":type"))?.[1] ?? "";
  const permission = onlyChild(grant, "Permission")?.text.trim() ?? "";
  if (type === "CanonicalUser") return `user ${permission}`;
  if (type === "Group") return `${onlyChild(grantee, "URI")?.text.trim() ?? ""} ${permission}`;
  return `${type} ${permission}`;
}

/**
 * The canned ACL a PutBucketAcl/PutObjectAcl body says: one CanonicalUser FULL_CONTROL grant
 * (the owner: the gateway has one owner, so its ID is not compared), with or without an AllUsers
 * READ grant. Any other grant is NotImplemented: the gateway keeps canned ACLs only.
 */
export function cannedAclOfPolicy(body: string): CannedAcl {
  const root = parseXml(body);
  if (root.name !== "AccessControlPolicy") throw new S3Error("MalformedACLError", `The XML you provided was not well-formed or did not validate against our published schema: the root is <${root.name}>, not <AccessControlPolicy>`);
  const list = onlyChild(root, "AccessControlList");
  const grants = list ? childrenNamed(list, "Grant").map(granteeKind).sort() : [];
  const said = grants.join(", ");
  if (said === "user FULL_CONTROL") return "private";
  if (said === `${allUsersUri} READ, user FULL_CONTROL`) return "public-read";
  throw new S3Error("NotImplemented", `an AccessControlPolicy with the grants [${said}] is not implemented by the mictlanx S3 gateway: only what the canned ACLs private (the owner FULL_CONTROL) and public-read (and AllUsers READ) say`);
}
