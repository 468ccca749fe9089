// What an access key looks like, and how a new one is made.
//
//   access key id  "MX" + 18 characters of [A-Z2-7] (RFC 4648 base32's alphabet): 90 random
//                  bits, plenty for an identifier that is not secret, short enough to read out,
//                  and the prefix tells it apart from other vendors' keys in a config file.
//   secret key     40 characters of [A-Za-z0-9]: ~238 random bits, the length of an S3 secret,
//                  so SigV4 clients (the S3 issue) take it as it is.
//
// Both come from crypto.getRandomValues. A byte is taken only when it falls below the largest
// multiple of the alphabet's size (256 for base32, 248 for 62 characters) and is used modulo
// that size: the others are thrown away and drawn again (rejection sampling), so every
// character is equally likely; a plain `byte % 62` would favour the first eight characters.
import { assert } from "./assert.ts";

export const accessKeyIdPrefix = "MX";
/** Random characters after the prefix. */
export const accessKeyIdRandomChars = 18;
export const accessKeyIdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
export const secretKeyChars = 40;
export const secretKeyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

export const accessKeyIdPattern = new RegExp(`^${accessKeyIdPrefix}[A-Z2-7]{${accessKeyIdRandomChars}}$`);
export const secretKeyPattern = new RegExp(`^[A-Za-z0-9]{${secretKeyChars}}$`);

/** Fills a buffer with random bytes: crypto.getRandomValues, or a test's fixed source. */
export type RandomBytes = (into: Uint8Array) => void;
const systemRandomBytes: RandomBytes = (into) => void crypto.getRandomValues(into);

/** `length` characters drawn uniformly from `alphabet` (rejection sampling; see the top of this file). */
export function randomString(alphabet: string, length: number, randomBytes: RandomBytes = systemRandomBytes): string {
  assert(alphabet.length >= 2 && alphabet.length <= 256, `an alphabet of ${alphabet.length} characters`);
  assert(Number.isSafeInteger(length) && length >= 0, `a random string of ${length} characters`);
  const accepted = 256 - (256 % alphabet.length); // bytes at or above this are drawn again
  const buffer = new Uint8Array(Math.max(16, length * 2));
  let out = "";
  while (out.length < length) {
    randomBytes(buffer);
    for (const byte of buffer) {
      if (byte >= accepted) continue;
      out += alphabet[byte % alphabet.length];
      if (out.length === length) break;
    }
  }
  return out;
}

export function newAccessKeyId(randomBytes?: RandomBytes): string {
  const id = accessKeyIdPrefix + randomString(accessKeyIdAlphabet, accessKeyIdRandomChars, randomBytes);
  assert(accessKeyIdPattern.test(id), `made an access key id of the wrong shape: ${id}`);
  return id;
}

export function newSecretKey(randomBytes?: RandomBytes): string {
  const secret = randomString(secretKeyAlphabet, secretKeyChars, randomBytes);
  assert(secretKeyPattern.test(secret), "made a secret key of the wrong shape");
  return secret;
}
