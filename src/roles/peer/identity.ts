// A peer's identity lives in DATA/peer.json, written with write-then-rename and fsync, so a crash
// leaves the old file or the new one, never half:
//   id          the peer's name in its VSS (--id, or made at first start); a restart keeps it.
//   instanceId  the identity of this data dir, made at its first start and never changed. A
//               wiped or replaced disk gets a new one, so the SPM can tell it from the old disk
//               (and two processes on copies of one dir from each other).
//   vssId       the VSS this peer joined, taken from the SPM's first reply and then kept: the
//               peer refuses orders from an SPM of another VSS (or one started on an empty catalog).
import { existsSync, readFileSync } from "node:fs";
import { writeFileDurable } from "../../lib/durable-file.ts";
import { join } from "node:path";
import { z } from "zod";
import { BadRequestError, ConflictError } from "../../lib/errors.ts";
import { peerId } from "../../protocol/schemas.ts";
import { instanceId as instanceIdSchema, vssId as vssIdSchema } from "../../protocol/spm.ts";

const identityFile = z.object({
  id: peerId,
  createdMs: z.number(),
  instanceId: instanceIdSchema.optional(),
  vssId: vssIdSchema.optional(),
});
type IdentityFile = z.infer<typeof identityFile>;

export class PeerIdentity {
  private constructor(
    private readonly path: string,
    private file: IdentityFile & { instanceId: string },
  ) {}

  get id(): string {
    return this.file.id;
  }

  get instanceId(): string {
    return this.file.instanceId;
  }

  /** The VSS this peer belongs to, once it has joined one. */
  get vssId(): string | undefined {
    return this.file.vssId;
  }

  /** Take the VSS id of the first SPM that accepts this peer, durably. Another one later is refused. */
  adoptVss(vssId: string): void {
    if (this.file.vssId === vssId) return;
    if (this.file.vssId !== undefined) throw new ConflictError(foreignVss(this.file.vssId, vssId));
    this.file = { ...this.file, vssId };
    writeFileDurable(this.path, JSON.stringify(this.file));
  }

  /**
   * Orders (delete, pull) must come from this peer's own VSS. A peer run alone (no SPM) takes
   * them from its user; one that reports to an SPM takes none until that SPM has accepted it:
   * a wiped disk back under its old id must not take orders meant for the old disk.
   */
  checkOrder(what: string, vssId: string | undefined, reportsToSpm: boolean): void {
    const own = this.file.vssId;
    if (own === undefined) {
      if (reportsToSpm) throw new ConflictError(`${what} refused: this peer has not been accepted by its SPM yet`);
      return;
    }
    if (vssId === undefined) throw new ConflictError(`${what} refused: this peer belongs to VSS ${own} and the order names no VSS`);
    if (vssId !== own) throw new ConflictError(`${what} refused: ${foreignVss(own, vssId)}`);
  }

  static loadOrCreate(dir: string, wanted: string | undefined): PeerIdentity {
    const path = join(dir, "peer.json");
    if (existsSync(path)) {
      const parsed = identityFile.safeParse(readJson(path));
      if (!parsed.success) throw new BadRequestError(`${path} is damaged; restore it or move it aside to give this peer a new id`);
      if (wanted !== undefined && wanted !== parsed.data.id) {
        throw new ConflictError(`${dir} belongs to peer "${parsed.data.id}", not "${wanted}"; drop --id or use another --data`);
      }
      if (parsed.data.instanceId !== undefined) return new PeerIdentity(path, { ...parsed.data, instanceId: parsed.data.instanceId });
      // Written before data dirs had an identity: this is still the same dir, so give it one now.
      const upgraded = { ...parsed.data, instanceId: newInstanceId() };
      writeFileDurable(path, JSON.stringify(upgraded));
      return new PeerIdentity(path, upgraded);
    }
    const id = wanted ?? `peer-${crypto.randomUUID().slice(0, 8)}`;
    const checked = peerId.safeParse(id);
    if (!checked.success) throw new BadRequestError(`peer id "${id}": ${checked.error.issues[0]?.message ?? "invalid"}`);
    const file = { id, createdMs: Date.now(), instanceId: newInstanceId() };
    writeFileDurable(path, JSON.stringify(file));
    return new PeerIdentity(path, file);
  }
}

function newInstanceId(): string {
  return crypto.randomUUID();
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
}

function foreignVss(own: string, other: string): string {
  return `this peer belongs to VSS ${own}, and the SPM speaking is VSS ${other}; is that SPM running on an empty or wrong catalog? This peer keeps its data and takes no orders from it`;
}
