// A peer's id lives in DATA/peer.json so a restarted peer comes back as itself. Written with
// write-then-rename and fsync, so a crash leaves the old file or the new one, never half.
import { existsSync, readFileSync } from "node:fs";
import { writeFileDurable } from "../../lib/durable-file.ts";
import { join } from "node:path";
import { z } from "zod";
import { BadRequestError, ConflictError } from "../../lib/errors.ts";
import { peerId } from "../../protocol/schemas.ts";

const identityFile = z.object({ id: peerId, createdMs: z.number() });

export function loadOrCreatePeerId(dir: string, wanted: string | undefined): string {
  const path = join(dir, "peer.json");
  if (existsSync(path)) {
    const parsed = identityFile.safeParse(JSON.parse(readFileSync(path, "utf8")));
    if (!parsed.success) throw new BadRequestError(`${path} is damaged; restore it or move it aside to give this peer a new id`);
    if (wanted !== undefined && wanted !== parsed.data.id) {
      throw new ConflictError(`${dir} belongs to peer "${parsed.data.id}", not "${wanted}"; drop --id or use another --data`);
    }
    return parsed.data.id;
  }
  const id = wanted ?? `peer-${crypto.randomUUID().slice(0, 8)}`;
  const checked = peerId.safeParse(id);
  if (!checked.success) throw new BadRequestError(`peer id "${id}": ${checked.error.issues[0]?.message ?? "invalid"}`);
  writeFileDurable(path, JSON.stringify({ id, createdMs: Date.now() }));
  return id;
}
