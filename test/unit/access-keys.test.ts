// Access key ids and secrets: their shape, and that every character is drawn without modulo
// bias (bytes past the alphabet's last whole multiple are drawn again, never folded over).
import { describe, expect, test } from "bun:test";
import {
  accessKeyIdAlphabet,
  accessKeyIdPattern,
  newAccessKeyId,
  newSecretKey,
  randomString,
  secretKeyAlphabet,
  secretKeyPattern,
  type RandomBytes,
} from "../../src/lib/access-keys.ts";

/** Bytes from a list, in order, round and round. */
function bytesFrom(values: number[]): RandomBytes {
  let at = 0;
  return (into) => {
    for (let i = 0; i < into.length; i += 1) into[i] = values[at++ % values.length]!;
  };
}

describe("access key ids and secrets", () => {
  test("an id is MX and 18 base32 characters; a secret 40 letters and digits; each new one differs", () => {
    const ids = new Set<string>();
    const secrets = new Set<string>();
    for (let i = 0; i < 200; i += 1) {
      const id = newAccessKeyId();
      const secret = newSecretKey();
      expect(id).toMatch(/^MX[A-Z2-7]{18}$/);
      expect(secret).toMatch(/^[A-Za-z0-9]{40}$/);
      ids.add(id);
      secrets.add(secret);
    }
    expect(ids.size).toBe(200);
    expect(secrets.size).toBe(200);
  });

  test("the patterns refuse what is not one", () => {
    expect(accessKeyIdPattern.test("MXA2B3C4D5E6F7G2H3I4")).toBe(true);
    for (const bad of ["MXA2B3C4D5E6F7G2H3I", "MXA2B3C4D5E6F7G2H3I45", "MXa2B3C4D5E6F7G2H3I4", "MX02B3C4D5E6F7G2H3I4", "AKA2B3C4D5E6F7G2H3I4"]) {
      expect(accessKeyIdPattern.test(bad)).toBe(false);
    }
    expect(secretKeyPattern.test("a".repeat(40))).toBe(true);
    expect(secretKeyPattern.test("a".repeat(39))).toBe(false);
    expect(secretKeyPattern.test(`${"a".repeat(39)}+`)).toBe(false);
  });
});

describe("rejection sampling", () => {
  test("for 62 characters, bytes 248 to 255 are drawn again, never folded onto the first eight characters", () => {
    // 248 % 62 = 0 and 255 % 62 = 7: a plain modulo would give "A".."H" here.
    const drawn = randomString(secretKeyAlphabet, 4, bytesFrom([248, 255, 250, 61, 0, 251, 62, 123]));
    expect(drawn).toBe(`${secretKeyAlphabet[61]}${secretKeyAlphabet[0]}${secretKeyAlphabet[0]}${secretKeyAlphabet[61]}`);
  });

  test("every byte below the cutoff maps to each character the same number of times", () => {
    const counts = new Map<string, number>();
    const all = Array.from({ length: 256 }, (_, byte) => byte);
    for (const character of randomString(secretKeyAlphabet, 248, bytesFrom(all))) counts.set(character, (counts.get(character) ?? 0) + 1);
    expect(counts.size).toBe(62);
    expect(new Set(counts.values())).toEqual(new Set([4])); // 248 = 62 × 4, no character more often
  });

  test("for base32 (256 = 32 × 8) no byte is ever thrown away", () => {
    const all = Array.from({ length: 256 }, (_, byte) => byte);
    const drawn = randomString(accessKeyIdAlphabet, 256, bytesFrom(all));
    expect(drawn).toBe(all.map((byte) => accessKeyIdAlphabet[byte % 32]).join(""));
  });

  test("a source that keeps giving rejected bytes gets asked again until it gives good ones", () => {
    let calls = 0;
    const stubborn: RandomBytes = (into) => {
      calls += 1;
      into.fill(calls < 3 ? 255 : 5);
    };
    expect(randomString(secretKeyAlphabet, 3, stubborn)).toBe(secretKeyAlphabet[5]!.repeat(3));
    expect(calls).toBe(3);
  });
});
