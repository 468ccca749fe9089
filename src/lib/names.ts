// Names people give (bucket, key, ball id, tags) and how they reach a terminal.
//
// New names may not hold control characters (C0 U+0000–U+001F, DEL U+007F, C1 U+0080–U+009F)
// or the invisible marks that reorder text on screen (the bidirectional embeddings, overrides
// and isolates U+202A–U+202E, U+2066–U+2069, and the marks U+200E, U+200F, U+061C): a key
// like "invoice\u202Efdp.exe" shows as "invoiceexe.pdf", and an ESC or a C1 CSI in a name
// printed by `ls` drives the terminal. Names stored before this rule stay readable; only new
// writes are refused (src/protocol/schemas.ts, src/catalog/validate.ts).
//
// Whatever a name holds, human output shows it through `printable`: every character that is not
// printable (Unicode's control, format, separator and surrogate categories: Cc, Cf, Zl, Zp, Cs)
// becomes \u{HEX} and a backslash is doubled, so what is shown maps back to exactly one name.
// JSON output stays exact JSON through `terminalJson`.

/** The characters a new name may not hold. */
const forbidden = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
const bidiControls = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

export interface ForbiddenCharacter {
  codePoint: number;
  /** 1-based, counted in characters (code points), as a person counts. */
  position: number;
  kind: "control character" | "bidirectional text control";
}

/** The first character a new name may not hold, or undefined when it holds none. */
export function forbiddenCharacterIn(text: string): ForbiddenCharacter | undefined {
  if (!forbidden.test(text)) return undefined; // the common case, without walking the string
  let position = 0;
  for (const character of text) {
    position += 1;
    if (!forbidden.test(character)) continue;
    const codePoint = character.codePointAt(0) as number;
    return { codePoint, position, kind: bidiControls.test(character) ? "bidirectional text control" : "control character" };
  }
  throw new Error("unreachable: the pattern matched the string but no character of it");
}

/** "U+001B". */
export function codePointText(codePoint: number): string {
  return `U+${codePoint.toString(16).toUpperCase().padStart(4, "0")}`;
}

/**
 * Why `text` cannot be a new name called `what` ("key", "tag name"), or undefined when it can.
 * The message names the field, the character's code point and where it is, never the raw text.
 */
export function newNameProblem(what: string, text: string): string | undefined {
  if (!text.isWellFormed()) return `${what} is not well-formed Unicode (it holds a lone surrogate)`;
  const found = forbiddenCharacterIn(text);
  if (found === undefined) return undefined;
  return `${what} holds ${codePointText(found.codePoint)} (a ${found.kind}) at character ${found.position}; names may not hold control characters (U+0000–U+001F, U+007F–U+009F) or bidirectional text controls (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069)`;
}

/** What `printable` rewrites. */
const notPrintable = /[\\\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

/**
 * `text` safe for a terminal and unambiguous: each character that is not printable becomes
 * \u{HEX} (lowercase hex, no padding: "\u{1b}", "\u{202e}"), and a backslash becomes "\\".
 * Everything else, letters of any script and emoji included, is kept as it is.
 */
export function printable(text: string): string {
  if (!notPrintable.test(text)) return text;
  let out = "";
  for (const character of text) {
    if (character === "\\") out += "\\\\";
    else if (notPrintable.test(character)) out += `\\u{${(character.codePointAt(0) as number).toString(16)}}`;
    else out += character;
  }
  return out;
}

/**
 * JSON.stringify, with the characters it leaves raw that a terminal could act on or that hide
 * text (DEL and C1, Unicode format characters such as the bidi controls, U+2028/U+2029) written
 * as \uXXXX escapes. JSON.stringify already escapes C0, quotes, backslashes and lone surrogates.
 * These characters only ever occur inside JSON strings, where an escape means the same
 * character, so every parser reads back exactly the same value.
 */
export function terminalJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\u009f\u2028\u2029\p{Cf}]/gu, (character) => {
    let escaped = "";
    for (let unit = 0; unit < character.length; unit += 1) escaped += `\\u${character.charCodeAt(unit).toString(16).padStart(4, "0")}`;
    return escaped;
  });
}
