// `mictlanx tui`: the live dashboard. Ink and React load only here, and only once the flags are
// good and there is a terminal to draw on.
import { UsageError } from "../lib/errors.ts";
import { parseDuration } from "../lib/size.ts";
import { formatAddress, parseAddress } from "../net/address.ts";
import { forceColorFor } from "../tui/terminal-env.ts";
import { clientSecurity, findCredentials, type CredentialFlags } from "../client/credentials.ts";

/** Faster than this the SPM would spend its time answering the dashboard. */
const intervalMsMin = 100;
const intervalMsMax = 60_000;

export async function runTuiCommand(flags: { spm?: string; interval: string } & CredentialFlags): Promise<void> {
  const { spmAddressesFor } = await import("./status.ts");
  const spms = (await spmAddressesFor(flags.spm)).map((address) => formatAddress(parseAddress(address)));
  const intervalMs = parseDuration(flags.interval);
  if (intervalMs < intervalMsMin || intervalMs > intervalMsMax) {
    throw new UsageError(`--interval must be between ${intervalMsMin}ms and ${intervalMsMax / 1000}s, got "${flags.interval}"`);
  }
  if (!process.stdout.isTTY || !process.stdin.isTTY) {
    throw new UsageError(`"mictlanx tui" needs an interactive terminal; for a one-off report use "mictlanx status" (or "mictlanx status --json")`);
  }
  const forceColor = forceColorFor(process.env);
  if (forceColor !== undefined) process.env.FORCE_COLOR = forceColor;
  const security = clientSecurity(findCredentials(flags)); // a bad credentials file is said before the screen is taken
  const { runTui } = await import("../tui/app.tsx");
  await runTui({ spms, intervalMs, ...(security ? { security } : {}) });
}
