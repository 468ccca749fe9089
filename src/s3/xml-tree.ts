// A small XML reader for the request bodies S3 clients send (AccessControlPolicy,
// LifecycleConfiguration): elements, their attributes and text, nothing more. Bodies are bounded
// by the caller (limits.s3BucketBodyBytesMax); nesting by xmlDepthMax here. No DTDs, no
// external entities, no processing instructions other than the declaration: what S3 itself
// accepts of these documents. Names are kept with their prefix stripped (`xsi:type` → `type`
// for attributes is not done: attributes keep their full names).
import { S3Error } from "./errors.ts";

export interface XmlElement {
  /** The local name (a namespace prefix stripped). */
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** The text directly inside, entities decoded, whitespace kept. */
  text: string;
}

/** How deep the documents S3 takes nest, with room to spare. */
const xmlDepthMax = 16;

function malformed(why: string): S3Error {
  return new S3Error("MalformedXML", `The XML you provided was not well-formed or did not validate against our published schema: ${why}`);
}

const entities: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decodeText(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, name: string) => {
    if (name.startsWith("#x")) return String.fromCodePoint(Number.parseInt(name.slice(2), 16));
    if (name.startsWith("#")) return String.fromCodePoint(Number.parseInt(name.slice(1), 10));
    const known = entities[name];
    if (known === undefined) throw malformed(`unknown entity ${whole}`);
    return known;
  });
}

function localName(name: string): string {
  const colon = name.indexOf(":");
  return colon < 0 ? name : name.slice(colon + 1);
}

const tagPattern = /<(\/?)([A-Za-z_][\w.:-]*)((?:\s+[\w.:-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/y;
const attributePattern = /([\w.:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;

/** The document's root element; MalformedXML for anything else. */
export function parseXml(text: string): XmlElement {
  let at = 0;
  const skipProlog = () => {
    for (;;) {
      while (at < text.length && /\s/.test(text[at]!)) at += 1;
      if (text.startsWith("<?xml", at)) at = endOf("?>");
      else if (text.startsWith("<!--", at)) at = endOf("-->");
      else return;
    }
  };
  const endOf = (close: string) => {
    const end = text.indexOf(close, at);
    if (end < 0) throw malformed(`unterminated ${close}`);
    return end + close.length;
  };
  skipProlog();
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  while (at < text.length) {
    if (root !== undefined && stack.length === 0) {
      skipProlog();
      if (at < text.length) throw malformed("text after the root element");
      break;
    }
    const lt = text.indexOf("<", at);
    if (lt < 0) throw malformed("the document ends inside an element");
    if (lt > at) {
      const top = stack[stack.length - 1];
      if (top === undefined) throw malformed("text before the root element");
      top.text += decodeText(text.slice(at, lt));
    }
    at = lt;
    if (text.startsWith("<!--", at)) {
      at = endOf("-->");
      continue;
    }
    if (text.startsWith("<!", at) || text.startsWith("<?", at)) throw malformed("declarations and processing instructions are not taken");
    tagPattern.lastIndex = at;
    const tag = tagPattern.exec(text);
    if (!tag) throw malformed(`a bad tag at offset ${at}`);
    at = tagPattern.lastIndex;
    const [, closing, rawName, rawAttributes, selfClosing] = tag;
    const name = localName(rawName ?? "");
    if (closing === "/") {
      const open = stack.pop();
      if (open?.name !== name) throw malformed(`</${rawName}> closes <${open?.name ?? "nothing"}>`);
      continue;
    }
    const attributes: Record<string, string> = {};
    for (const match of (rawAttributes ?? "").matchAll(attributePattern)) attributes[match[1] ?? ""] = decodeText(match[2] ?? match[3] ?? "");
    const element: XmlElement = { name, attributes, children: [], text: "" };
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(element);
    else if (root === undefined) root = element;
    else throw malformed("more than one root element");
    if (selfClosing !== "/") stack.push(element);
    if (stack.length > xmlDepthMax) throw malformed(`elements nest deeper than ${xmlDepthMax}`);
  }
  if (root === undefined) throw malformed("the body is empty");
  if (stack.length > 0) throw malformed(`<${stack[stack.length - 1]?.name}> is not closed`);
  return root;
}

/** The children of `element` named `name`. */
export function childrenNamed(element: XmlElement, name: string): XmlElement[] {
  return element.children.filter((child) => child.name === name);
}

/** The one child named `name`, or undefined; MalformedXML when there are several. */
export function onlyChild(element: XmlElement, name: string): XmlElement | undefined {
  const found = childrenNamed(element, name);
  if (found.length > 1) throw malformed(`<${element.name}> has ${found.length} <${name}> elements; it takes one`);
  return found[0];
}

/** The trimmed text of the one child named `name`, or undefined. */
export function childText(element: XmlElement, name: string): string | undefined {
  return onlyChild(element, name)?.text.trim();
}

export { malformed as malformedXml };
