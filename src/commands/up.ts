// `mictlanx up`: a whole local VSS in one command; Ctrl-C (or SIGTERM) stops every process.
import { resolve } from "node:path";
import { parsePort, parsePositiveInt } from "../lib/defaults.ts";

export async function runUpCommand(flags: { data: string; peers: string; routers: string; port: string }): Promise<void> {
  const { startLocalVss } = await import("../local/vss.ts");
  const dir = resolve(flags.data);
  const peers = parsePositiveInt(flags.peers, "--peers");
  const routers = parsePositiveInt(flags.routers, "--routers");
  const basePort = parsePort(flags.port);
  process.stderr.write(`starting a VSS in ${dir}: 1 spm, ${routers} router(s), ${peers} peer(s)…\n`);
  const vss = await startLocalVss({ dir, peers, routers, basePort });
  const described = vss.describe();
  process.stdout.write(
    [
      `mictlanx VSS is up (data in ${dir}, logs in ${dir}/logs)`,
      `  spm      ${described.spm}  ${vss.spm.metricsUrl ?? ""}`,
      ...vss.routers.map((router) => `  router   ${router.address}  ${router.metricsUrl ?? ""}`),
      ...vss.peers.map((peer) => `  peer     ${peer.address}  ${peer.id}  ${peer.metricsUrl ?? ""}  ${peer.data}`),
      `try:  mictlanx put demo/hello.txt ./README.md && mictlanx get demo/hello.txt -o -`,
      `      mictlanx status      (Ctrl-C here stops the VSS)`,
      "",
    ].join("\n"),
  );
  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${why}: stopping the VSS…\n`);
    await vss.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
  for (const role of [vss.spm, ...vss.routers, ...vss.peers]) {
    void role.exited.then((code) => {
      if (!stopping) process.stderr.write(`warning: ${role.name} (pid ${role.pid}) exited with code ${code}; see ${dir}/logs/${role.name}.log\n`);
    });
  }
  await new Promise(() => {});
}
