// Read every ball of a ledger back through the client: what came back wrong, or failed, one
// line per key (empty when every byte is right).
import type { Client } from "../../src/client/client.ts";

export async function wrongReads(client: Client, bucket: string, balls: ReadonlyMap<string, Uint8Array>): Promise<string[]> {
  const wrong: string[] = [];
  for (const [key, data] of balls) {
    const got = await client.get(bucket, key).catch((error: Error) => error);
    if (got instanceof Error) wrong.push(`${key}: ${got.message}`);
    else if (Buffer.compare(Buffer.from(got), Buffer.from(data)) !== 0) wrong.push(`${key}: wrong bytes`);
  }
  return wrong;
}
