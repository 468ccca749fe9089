import { NotImplementedError } from "../lib/errors.ts";
export async function runPeerCommand(_options: Record<string, unknown>): Promise<void> {
  throw new NotImplementedError("peer not built yet");
}
