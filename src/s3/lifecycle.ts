// S3 bucket lifecycle rules (issue 13), the part the gateway builds: Expiration by Days or by
// Date and AbortIncompleteMultipartUpload, each under a key prefix (Filter/Prefix, or the legacy
// Rule/Prefix), Enabled or Disabled. Anything else a rule can say in S3 (Transition, the
// Noncurrent* actions, tag and size filters, ExpiredObjectDeleteMarker) is NotImplemented, so a
// configuration is never stored meaning less than it said.
//
// Pure: parsing the XML, writing it back, the stored (JSON) form, and the evaluation "which
// objects have expired at time T", which the SPM's lifecycle pass runs with its own clock.
import { z } from "zod";
import { limits } from "../lib/limits.ts";
import { S3Error } from "./errors.ts";
import { childText, childrenNamed, malformedXml, onlyChild, parseXml, type XmlElement } from "./xml-tree.ts";

const dayMs = 86_400_000;

const expiration = z.union([z.object({ days: z.number().int().min(1) }).strict(), z.object({ dateMs: z.number().int().min(0) }).strict()]);

export const lifecycleRule = z.object({
  id: z.string().min(1).max(limits.s3LifecycleRuleIdBytesMax),
  enabled: z.boolean(),
  /** Keys under it (byte prefix); "" is the whole bucket. */
  prefix: z.string().max(limits.keyBytesMax),
  expiration: expiration.optional(),
  /** Multipart uploads begun this many days ago and not completed are aborted. */
  abortIncompleteDays: z.number().int().min(1).optional(),
});
export type LifecycleRule = z.infer<typeof lifecycleRule>;

/** A bucket's lifecycle configuration as the catalog keeps it (JSON), and the SPM reads it back. */
export const lifecycleConfiguration = z.object({ rules: z.array(lifecycleRule).min(1).max(limits.s3LifecycleRulesMax) });
export type LifecycleConfiguration = z.infer<typeof lifecycleConfiguration>;

const notBuilt = (what: string) => new S3Error("NotImplemented", `${what} in a lifecycle rule is not implemented by the mictlanx S3 gateway: only Expiration (Days or Date) and AbortIncompleteMultipartUpload, under a Prefix`);

/** A positive whole number of days from an element's text. */
function positiveDays(text: string | undefined, what: string): number {
  const days = Number(text);
  if (text === undefined || !/^\d+$/.test(text) || !Number.isSafeInteger(days) || days < 1) throw new S3Error("InvalidArgument", `'${what}' must be a positive integer; got ${JSON.stringify(text ?? "")}`);
  return days;
}

/** S3 takes an Expiration Date only at midnight UTC (ISO 8601); a time without a zone is UTC, never the SPM's local time. */
function midnightDate(text: string): number {
  const form = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]00:?00)?)?$/.exec(text);
  const ms = Date.parse(form?.[1] !== undefined && form[2] === undefined ? `${text}Z` : text);
  if (!form || Number.isNaN(ms)) throw new S3Error("InvalidArgument", `Expiration Date ${JSON.stringify(text)} is not an ISO 8601 date`);
  if (ms % dayMs !== 0) throw new S3Error("InvalidArgument", `Expiration Date ${text} must be at midnight UTC (e.g. 2026-01-01T00:00:00Z)`);
  return ms;
}

function parseExpiration(element: XmlElement): LifecycleRule["expiration"] {
  if (onlyChild(element, "ExpiredObjectDeleteMarker")) throw notBuilt("Expiration ExpiredObjectDeleteMarker (there are no delete markers: buckets are not versioned)");
  const days = childText(element, "Days");
  const date = childText(element, "Date");
  if ((days === undefined) === (date === undefined)) throw malformedXml("Expiration takes one of Days or Date");
  return days !== undefined ? { days: positiveDays(days, "Days") } : { dateMs: midnightDate(date ?? "") };
}

/** The rule's prefix, from Filter (Prefix only) or the legacy Rule/Prefix. */
function parsePrefix(rule: XmlElement): string {
  const filter = onlyChild(rule, "Filter");
  const legacy = onlyChild(rule, "Prefix");
  if (filter && legacy) throw malformedXml("a Rule takes Filter or Prefix, not both");
  if (!filter) return legacy?.text ?? "";
  for (const child of filter.children) {
    if (child.name === "Tag" || child.name === "And" || child.name.startsWith("ObjectSize")) throw notBuilt(`Filter/${child.name}`);
    if (child.name !== "Prefix") throw malformedXml(`Filter/${child.name} is not an element of a lifecycle Filter`);
  }
  return onlyChild(filter, "Prefix")?.text ?? "";
}

const ruleElements = new Set(["ID", "Status", "Filter", "Prefix", "Expiration", "AbortIncompleteMultipartUpload"]);
const unbuiltElements = new Set(["Transition", "Transitions", "NoncurrentVersionTransition", "NoncurrentVersionExpiration"]);

function parseRule(rule: XmlElement, makeId: () => string): LifecycleRule {
  for (const child of rule.children) {
    if (unbuiltElements.has(child.name)) throw notBuilt(child.name);
    if (!ruleElements.has(child.name)) throw malformedXml(`Rule/${child.name} is not an element of a lifecycle rule`);
  }
  const id = childText(rule, "ID") ?? makeId();
  if (id === "" || new TextEncoder().encode(id).byteLength > limits.s3LifecycleRuleIdBytesMax) throw new S3Error("InvalidArgument", `a rule's ID is 1 to ${limits.s3LifecycleRuleIdBytesMax} bytes`);
  const status = childText(rule, "Status");
  if (status !== "Enabled" && status !== "Disabled") throw malformedXml(`rule ${id}: Status is Enabled or Disabled, not ${JSON.stringify(status ?? "")}`);
  const expirationElement = onlyChild(rule, "Expiration");
  const abort = onlyChild(rule, "AbortIncompleteMultipartUpload");
  if (!expirationElement && !abort) throw new S3Error("InvalidRequest", `rule ${id}: at least one action needs to be specified in a rule (Expiration or AbortIncompleteMultipartUpload)`);
  const prefix = parsePrefix(rule);
  if (new TextEncoder().encode(prefix).byteLength > limits.keyBytesMax) throw new S3Error("InvalidArgument", `rule ${id}: a prefix is at most ${limits.keyBytesMax} bytes`);
  return {
    id,
    enabled: status === "Enabled",
    prefix,
    ...(expirationElement ? { expiration: parseExpiration(expirationElement) } : {}),
    ...(abort ? { abortIncompleteDays: positiveDays(childText(abort, "DaysAfterInitiation"), "DaysAfterInitiation") } : {}),
  };
}

/** A PutBucketLifecycleConfiguration body; MalformedXML, InvalidArgument or NotImplemented for what is not taken. */
export function parseLifecycleXml(body: string, makeId: () => string = () => crypto.randomUUID()): LifecycleConfiguration {
  const root = parseXml(body);
  if (root.name !== "LifecycleConfiguration") throw malformedXml(`the root is <${root.name}>, not <LifecycleConfiguration>`);
  const ruleElementsFound = childrenNamed(root, "Rule");
  if (ruleElementsFound.length !== root.children.length) throw malformedXml("LifecycleConfiguration holds only Rule elements");
  if (ruleElementsFound.length === 0) throw malformedXml("a LifecycleConfiguration has at least one Rule");
  if (ruleElementsFound.length > limits.s3LifecycleRulesMax) throw new S3Error("InvalidRequest", `a lifecycle configuration has at most ${limits.s3LifecycleRulesMax} rules; this one has ${ruleElementsFound.length}`);
  const rules = ruleElementsFound.map((rule) => parseRule(rule, makeId));
  const ids = new Set(rules.map((rule) => rule.id));
  if (ids.size !== rules.length) throw new S3Error("InvalidArgument", "rule IDs must be unique in a lifecycle configuration");
  return lifecycleConfiguration.parse({ rules });
}

function xmlText(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c] ?? c);
}

function ruleXml(rule: LifecycleRule): string {
  const expiration = rule.expiration === undefined ? "" : "days" in rule.expiration ? `<Expiration><Days>${rule.expiration.days}</Days></Expiration>` : `<Expiration><Date>${new Date(rule.expiration.dateMs).toISOString().replace(".000Z", "Z")}</Date></Expiration>`;
  const abort = rule.abortIncompleteDays === undefined ? "" : `<AbortIncompleteMultipartUpload><DaysAfterInitiation>${rule.abortIncompleteDays}</DaysAfterInitiation></AbortIncompleteMultipartUpload>`;
  return `<Rule><ID>${xmlText(rule.id)}</ID><Filter><Prefix>${xmlText(rule.prefix)}</Prefix></Filter><Status>${rule.enabled ? "Enabled" : "Disabled"}</Status>${expiration}${abort}</Rule>`;
}

/** What GetBucketLifecycleConfiguration answers. */
export function lifecycleXml(config: LifecycleConfiguration): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${config.rules.map(ruleXml).join("")}</LifecycleConfiguration>`;
}

/** S3's rule: creation time plus the days, rounded up to the next midnight UTC. */
export function daysDeadlineMs(startMs: number, days: number): number {
  return Math.ceil((startMs + days * dayMs) / dayMs) * dayMs;
}

/** When an object made at `createdMs` under `rule` expires, or undefined if the rule does not expire it. */
export function ruleExpiresAtMs(rule: LifecycleRule, key: string, createdMs: number): number | undefined {
  if (!rule.enabled || rule.expiration === undefined || !key.startsWith(rule.prefix)) return undefined;
  return "days" in rule.expiration ? daysDeadlineMs(createdMs, rule.expiration.days) : rule.expiration.dateMs;
}

/** When the object expires by the soonest of the configuration's rules; undefined: never. */
export function expiresAtMs(config: LifecycleConfiguration, key: string, createdMs: number): number | undefined {
  let soonest: number | undefined;
  for (const rule of config.rules) {
    const at = ruleExpiresAtMs(rule, key, createdMs);
    if (at !== undefined && (soonest === undefined || at < soonest)) soonest = at;
  }
  return soonest;
}

export function isExpired(config: LifecycleConfiguration, key: string, createdMs: number, nowMs: number): boolean {
  const at = expiresAtMs(config, key, createdMs);
  return at !== undefined && at <= nowMs;
}

/** When a multipart upload of `key` begun at `initiatedMs` is to be aborted by the rules; undefined: only by the gateway's own limit. */
export function uploadAbortAtMs(config: LifecycleConfiguration, key: string, initiatedMs: number): number | undefined {
  let soonest: number | undefined;
  for (const rule of config.rules) {
    if (!rule.enabled || rule.abortIncompleteDays === undefined || !key.startsWith(rule.prefix)) continue;
    const at = daysDeadlineMs(initiatedMs, rule.abortIncompleteDays);
    if (soonest === undefined || at < soonest) soonest = at;
  }
  return soonest;
}

/**
 * The rule "abort after `days`" as a cut-off: an upload begun at `initiatedMs` is due at `nowMs`
 * (daysDeadlineMs(initiatedMs, days) <= nowMs) exactly when initiatedMs < the returned time. For
 * a sweep that takes "uploads begun before T" (the multipart catalog code's query).
 */
export function uploadsBegunBeforeMs(days: number, nowMs: number): number {
  return (Math.floor(nowMs / dayMs) - days) * dayMs + 1;
}

/** The prefixes whose keys may expire: the lifecycle pass lists only these ranges. Overlapping ones are folded. */
export function expiringPrefixes(config: LifecycleConfiguration): string[] {
  const prefixes = [...new Set(config.rules.filter((rule) => rule.enabled && rule.expiration !== undefined).map((rule) => rule.prefix))].sort();
  return prefixes.filter((prefix, at) => !prefixes.slice(0, at).some((shorter) => prefix.startsWith(shorter)));
}
