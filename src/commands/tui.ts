// `mictlanx tui`: the live dashboard. Ink and React load only here.
import { NotImplementedError } from "../lib/errors.ts";

export async function runTuiCommand(_flags: { spm?: string; interval: string }): Promise<void> {
  throw new NotImplementedError(`"mictlanx tui" is not built in this version yet (tracked in issue 6)`);
}
