// What a get checks (src/client/client.ts, GetOptions.verify; docs/client.md "What a get
// checks"). Here, with no imports, so the command line can offer the choices without loading
// the client.

/** "full": each chunk's xxh3 and the whole payload's sha256; "chunks": each chunk's xxh3 only. */
export type Verify = "full" | "chunks";
export const verifyModes: readonly Verify[] = ["full", "chunks"];
