// `mictlanx router`: run a gateway until SIGINT/SIGTERM.
import { parsePort, resolveSpm } from "../lib/defaults.ts";
import { parseAddress } from "../net/address.ts";
import { stopOnSignals } from "./signals.ts";

export async function runRouterCommand(flags: { port: string; host: string; spm?: string }): Promise<void> {
  const spm = resolveSpm(flags.spm);
  parseAddress(spm); // a usage error now rather than on the first request
  const { startRouter } = await import("../roles/router/router.ts");
  const router = await startRouter({
    host: flags.host,
    port: parsePort(flags.port),
    spm,
    log: (line) => process.stderr.write(`router: ${line}\n`),
  });
  process.stdout.write(`mictlanx router listening on ${router.address}\n`);
  await stopOnSignals(() => router.stop());
}
