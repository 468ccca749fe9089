// A credentials file: `{ "accessKey", "secretKey", "ca" }` (mode 0600), written by `mictlanx up`
// (DIR/credentials.json) or by a bare SPM for its first admin key; `ca` a path, relative to the
// file's directory, or null. Read by the CLI (src/client/credentials.ts) and by `up` itself.
import { readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { UsageError } from "./errors.ts";
import { limits } from "./limits.ts";

const credentialsFile = z.object({ accessKey: z.string().min(1), secretKey: z.string().min(1), ca: z.string().min(1).nullable().optional() });

/** The file's key and CA path (absolute); a missing, unreadable or malformed file is a usage error naming it. */
export function readCredentialsFile(path: string): { accessKey: string; secretKey: string; ca?: string } {
  let text: string;
  try {
    if (statSync(path).size > limits.tlsFileBytesMax) throw new UsageError(`credentials file ${path} is too large to be one`);
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = (error as { code?: string }).code;
    throw new UsageError(`credentials file ${path} ${code === "ENOENT" ? "does not exist" : `cannot be read: ${(error as Error).message}`}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new UsageError(`credentials file ${path} is not JSON; it holds { "accessKey", "secretKey", "ca" }`);
  }
  const parsed = credentialsFile.safeParse(raw);
  if (!parsed.success) throw new UsageError(`credentials file ${path}: ${parsed.error.issues.map((issue) => `${issue.path.join(".") || "(file)"}: ${issue.message}`).join("; ")}`);
  const { accessKey, secretKey, ca } = parsed.data;
  return { accessKey, secretKey, ...(ca ? { ca: isAbsolute(ca) ? ca : resolve(dirname(path), ca) } : {}) };
}

