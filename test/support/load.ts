// A bounded, seeded load of puts and gets for fault tests. Every acknowledged put is recorded
// with its bytes; every get is compared byte for byte, and a wrong byte is never excused.
import type { Client } from "../../src/client/client.ts";
import { randomBytes } from "./random.ts";

export class Ledger {
  readonly acknowledged = new Map<string, Uint8Array>();
  readonly wrongBytes: string[] = [];
  readonly putErrors: string[] = [];
  readonly getErrors: string[] = [];
  gets = 0;
}

export interface LoadOptions {
  client: Client;
  bucket: string;
  random: () => number;
  ledger: Ledger;
  durationMs: number;
  /** Count bound too: the loop stops at whichever comes first. */
  opsMax?: number;
  workers?: number;
  sizeMax?: number;
  rf?: number;
  prefix?: string;
}

export async function runLoad(options: LoadOptions): Promise<void> {
  const deadline = Date.now() + options.durationMs;
  const opsMax = options.opsMax ?? 5_000;
  let ops = 0;
  let next = 0;
  const worker = async () => {
    while (Date.now() < deadline && ops < opsMax) {
      ops += 1;
      const keys = [...options.ledger.acknowledged.keys()];
      if (keys.length === 0 || options.random() < 0.5) {
        const key = `${options.prefix ?? "load"}/${String(next++).padStart(6, "0")}`;
        const size = Math.floor(options.random() ** 3 * (options.sizeMax ?? 3 * 1024 * 1024));
        const data = randomBytes(options.random, size);
        try {
          await options.client.put(options.bucket, key, data, { rf: options.rf ?? 2 });
          options.ledger.acknowledged.set(key, data);
        } catch (error) {
          options.ledger.putErrors.push(`${key}: ${(error as Error).message}`);
        }
      } else {
        const key = keys[Math.floor(options.random() * keys.length)] as string;
        await checkGet(options.client, options.bucket, key, options.ledger, "load");
      }
    }
  };
  await Promise.all(Array.from({ length: options.workers ?? 4 }, worker));
}

export async function checkGet(client: Client, bucket: string, key: string, ledger: Ledger, phase: string): Promise<boolean> {
  const expected = ledger.acknowledged.get(key);
  if (!expected) throw new Error(`no acknowledged ball ${key}`);
  ledger.gets += 1;
  let got: Uint8Array;
  try {
    got = await client.get(bucket, key);
  } catch (error) {
    ledger.getErrors.push(`${phase} ${key}: ${(error as Error).message}`);
    return false;
  }
  if (got.byteLength !== expected.byteLength || Buffer.compare(Buffer.from(got), Buffer.from(expected)) !== 0) {
    ledger.wrongBytes.push(`${phase} ${key}: ${got.byteLength} bytes back for ${expected.byteLength}`);
    return false;
  }
  return true;
}

/** Read every acknowledged ball back; returns the keys that failed. */
export async function verifyAll(client: Client, bucket: string, ledger: Ledger, phase: string): Promise<string[]> {
  const failed: string[] = [];
  for (const key of ledger.acknowledged.keys()) if (!(await checkGet(client, bucket, key, ledger, phase))) failed.push(key);
  return failed;
}

/** Read back every ball of `balls` (key → the bytes put); returns what failed, each with why. */
export async function readBackAll(client: Client, bucket: string, balls: ReadonlyMap<string, Uint8Array>, phase = ""): Promise<string[]> {
  const wrong: string[] = [];
  const where = phase === "" ? "" : `${phase} `;
  for (const [key, data] of balls) {
    const got = await client.get(bucket, key).catch((error: Error) => error);
    if (got instanceof Error) wrong.push(`${where}${key}: ${got.message}`);
    else if (got.byteLength !== data.byteLength || Buffer.compare(Buffer.from(got), Buffer.from(data)) !== 0) wrong.push(`${where}${key}: wrong bytes`);
  }
  return wrong;
}
