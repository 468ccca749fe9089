// `mictlanx certs init` and `mictlanx certs issue`: a VSS's CA and its nodes' certificates,
// without OpenSSL (src/certs/certs.ts).
import { z } from "zod";
import { UsageError } from "../lib/errors.ts";
import { describeZodError } from "../protocol/envelope.ts";
import { nodeRoles } from "../lib/node-identity.ts";

const initFlags = z.object({ dir: z.string().optional(), days: z.string().optional(), json: z.boolean().optional() });
const issueFlags = z.object({
  dir: z.string().optional(),
  role: z.string().optional(),
  id: z.string().optional(),
  host: z.array(z.string()).optional(),
  days: z.string().optional(),
  json: z.boolean().optional(),
});

export async function certsInitCommand(raw: Record<string, unknown>): Promise<void> {
  const flags = parse(initFlags, raw);
  if (!flags.dir) throw new UsageError("certs init needs --dir D (where ca.crt and ca.key are written)");
  const { initCa } = await import("../certs/certs.ts");
  const files = await initCa(flags.dir, flags.days === undefined ? {} : { days: parseDays(flags.days) });
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ ca: files.certPath, key: files.keyPath })}\n`);
    return;
  }
  process.stdout.write(`made a VSS CA: ${files.certPath} (give it to every node and client as --tls-ca / --ca)\n`);
  process.stdout.write(`its private key: ${files.keyPath} (mode 0600; keep it off the nodes: it signs certificates)\n`);
}

export async function certsIssueCommand(raw: Record<string, unknown>): Promise<void> {
  const flags = parse(issueFlags, raw);
  if (!flags.dir) throw new UsageError("certs issue needs --dir D (the CA's dir, from certs init)");
  if (!flags.role) throw new UsageError(`certs issue needs --role (${nodeRoles.join(", ")})`);
  if (!flags.id) throw new UsageError("certs issue needs --id (the node's id: a peer's --id, e.g. peer-4; spm or router-1 for the others)");
  const hosts = flags.host ?? [];
  if (hosts.length === 0) throw new UsageError("certs issue needs --host (the address others dial this node at: its --advertise host; repeat for more names)");
  const { issueNodeCertificate } = await import("../certs/certs.ts");
  const issued = await issueNodeCertificate({
    dir: flags.dir,
    role: flags.role as (typeof nodeRoles)[number], // checked there, with a message naming the roles
    id: flags.id,
    hosts,
    ...(flags.days === undefined ? {} : { days: parseDays(flags.days) }),
  });
  const expires = new Date(issued.notAfterMs).toISOString();
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ cert: issued.certPath, key: issued.keyPath, ca: issued.caPath, notAfter: expires })}\n`);
    return;
  }
  process.stdout.write(`issued ${flags.role} ${flags.id} for ${hosts.join(", ")}, valid until ${expires}\n`);
  process.stdout.write(`  --tls-cert ${issued.certPath} --tls-key ${issued.keyPath} --tls-ca ${issued.caPath}\n`);
}

function parse<T extends z.ZodType>(schema: T, raw: Record<string, unknown>): z.output<T> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new UsageError(describeZodError(parsed.error));
  return parsed.data;
}

function parseDays(text: string): number {
  const days = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(days)) throw new UsageError(`--days must be a whole number of days, got "${text}"`);
  return days;
}
