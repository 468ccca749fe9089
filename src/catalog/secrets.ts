// Access keys' secrets, sealed. A secret cannot be hashed like a password: routers verify a
// client's proof (an HMAC keyed by it) and the S3 gateway will check SigV4 signatures, and both
// need the secret itself. So the catalog keeps each secret encrypted with AES-256-GCM under a
// master key that lives in its own file beside the catalog, `secrets.key` (32 random bytes,
// mode 0600, written once with the catalog). A copy of catalog.sqlite alone (a backup, a disk
// image, a file someone mailed for debugging) gives no secret away; whoever has both files
// has them all. The key id is the associated data, so a sealed secret copied onto another key's
// row does not open.
//
//   sealed secret:  ┌────────────┬──────────────┬────────────────────┬───────────────┐
//                   │ version 1  │ 12-byte nonce│ ciphertext         │ 16-byte tag   │
//                   └────────────┴──────────────┴────────────────────┴───────────────┘
//
// The nonces are random: 2^96 of them, and a VSS seals one per key made (accessKeysMax), far
// from where random nonces under one key start to collide. A check value sealed under the
// master key (meta `secrets_key_check`) tells a wrong secrets.key at open from a damaged row.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { assert } from "../lib/assert.ts";
import { MictlanxError } from "../lib/errors.ts";
import { writeFileDurable } from "../lib/durable-file.ts";

export const masterKeyBytes = 32;
const sealVersion = 1;
const nonceBytes = 12;
const tagBytes = 16;
const checkAssociated = "mictlanx secrets.key check";
const checkPlaintext = "the master key of this catalog";

/** Encrypt `plaintext` under `masterKey`, bound to `associated` (an access key id). */
export function seal(masterKey: Uint8Array, associated: string, plaintext: string): Uint8Array {
  assert(masterKey.byteLength === masterKeyBytes, `a master key of ${masterKey.byteLength} bytes`);
  const nonce = randomBytes(nonceBytes);
  const cipher = createCipheriv("aes-256-gcm", masterKey, nonce, { authTagLength: tagBytes });
  cipher.setAAD(Buffer.from(associated, "utf8"));
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return new Uint8Array(Buffer.concat([Buffer.of(sealVersion), nonce, body, cipher.getAuthTag()]));
}

/** The plaintext, or undefined when the blob was not sealed by `masterKey` for `associated` (or was changed since). */
export function unseal(masterKey: Uint8Array, associated: string, sealed: Uint8Array): string | undefined {
  assert(masterKey.byteLength === masterKeyBytes, `a master key of ${masterKey.byteLength} bytes`);
  if (sealed.byteLength < 1 + nonceBytes + tagBytes || sealed[0] !== sealVersion) return undefined;
  const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  const decipher = createDecipheriv("aes-256-gcm", masterKey, bytes.subarray(1, 1 + nonceBytes), { authTagLength: tagBytes });
  decipher.setAAD(Buffer.from(associated, "utf8"));
  decipher.setAuthTag(bytes.subarray(bytes.byteLength - tagBytes));
  try {
    return Buffer.concat([decipher.update(bytes.subarray(1 + nonceBytes, bytes.byteLength - tagBytes)), decipher.final()]).toString("utf8");
  } catch {
    return undefined; // the tag did not verify: another key, another id, or changed bytes
  }
}

/** What the catalog knows when it looks for its master key. */
export interface MasterKeyState {
  /** Access keys in the catalog: secrets sealed under some master key. */
  heldKeys: number;
  /** The check value sealed under the master key, if one was recorded. */
  check: string | undefined;
}

/**
 * The catalog's master key from `path`, made (and written 0600, durably) when there is none and
 * the catalog holds no sealed secret. A catalog holding keys without its secrets.key, or with
 * another one, is an error that says what to restore: a new master key would make every
 * secret unreadable without a word.
 */
export function loadMasterKey(path: string, state: MasterKeyState): { key: Uint8Array; made: boolean } {
  if (!existsSync(path)) {
    if (state.heldKeys > 0) {
      throw new MictlanxError(
        "unavailable",
        `the catalog holds ${state.heldKeys} access keys but their master key ${path} is missing; restore secrets.key from where the catalog was backed up (the keys' secrets cannot be read without it), or start on a new --data directory`,
      );
    }
    const key = new Uint8Array(randomBytes(masterKeyBytes));
    writeFileDurable(path, key, { mode: 0o600 });
    return { key, made: true };
  }
  const key = new Uint8Array(readFileSync(path));
  if (key.byteLength !== masterKeyBytes) {
    throw new MictlanxError("unavailable", `${path} holds ${key.byteLength} bytes, not the ${masterKeyBytes} of a master key; restore it from a backup (or, with no access keys in the catalog, remove it and a new one is made)`);
  }
  if (state.check !== undefined && state.heldKeys > 0 && unseal(key, checkAssociated, Buffer.from(state.check, "hex")) !== checkPlaintext) {
    throw new MictlanxError("unavailable", `${path} is not the master key this catalog's ${state.heldKeys} access keys were sealed with; put the secrets.key that was made with this catalog back`);
  }
  return { key, made: false };
}

/** The check value to record for `masterKey` (hex), so a wrong secrets.key is told apart at open. */
export function masterKeyCheck(masterKey: Uint8Array): string {
  return Buffer.from(seal(masterKey, checkAssociated, checkPlaintext)).toString("hex");
}

/** Whether `check` was made for `masterKey`. */
export function matchesCheck(masterKey: Uint8Array, check: string): boolean {
  return unseal(masterKey, checkAssociated, Buffer.from(check, "hex")) === checkPlaintext;
}
