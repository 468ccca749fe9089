// `mictlanx up`: a whole local VSS in one command; Ctrl-C (or SIGTERM) stops every process.
// A child that dies is started again (src/local/supervisor.ts) unless --no-restart; one that
// keeps dying stops the VSS, and `up` exits 1 with its last log lines.
import { resolve } from "node:path";
import { parsePort, parsePositiveInt } from "../lib/defaults.ts";
import { UsageError } from "../lib/errors.ts";
import { limits, vssTimings } from "../lib/limits.ts";
import { parseDuration } from "../lib/size.ts";
import { watchParent } from "./signals.ts";
import type { GiveUp } from "../local/supervisor.ts";
import type { LocalVss } from "../local/vss.ts";

export interface UpFlags {
  data: string;
  peers: string;
  routers: string;
  port: string;
  /** commander's --no-restart: false turns supervision off. */
  restart: boolean;
  suspectAfter?: string;
  downAfter?: string;
}

export async function runUpCommand(flags: UpFlags): Promise<void> {
  const { startLocalVss } = await import("../local/vss.ts");
  const { superviseVss } = await import("../local/supervisor.ts");
  const dir = resolve(flags.data);
  const peers = parsePositiveInt(flags.peers, "--peers");
  const routers = parsePositiveInt(flags.routers, "--routers");
  const basePort = parsePort(flags.port);
  const spmArgs = livenessArgs(flags);
  process.stderr.write(`starting a VSS in ${dir}: 1 spm, ${routers} router(s), ${peers} peer(s)…\n`);
  const vss = await startLocalVss({ dir, peers, routers, basePort, spmArgs });
  printBanner(vss, dir, flags.restart);
  const supervisor = superviseVss(vss, { restart: flags.restart, say: (line) => process.stderr.write(`mictlanx up: ${line}\n`) });
  let stopping = false;
  const stop = async (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${why}: stopping the VSS…\n`);
    await supervisor.stop();
    await vss.stop();
    process.exit(code);
  };
  process.on("SIGINT", () => void stop("SIGINT", 0));
  process.on("SIGTERM", () => void stop("SIGTERM", 0));
  watchParent(() => void stop("the loss of the process that started up (MICTLANX_PARENT_PID)", 1));
  void supervisor.gaveUp.then((why) => {
    process.stderr.write(describeGiveUp(why));
    return stop(`${why.name} keeps dying`, 1);
  });
  await new Promise(() => {});
}

/** --suspect-after and --down-after go to the SPM; checked here so a mistake is a usage error of `up`. */
function livenessArgs(flags: UpFlags): string[] {
  const suspectMs = flags.suspectAfter === undefined ? vssTimings.suspectAfterMs : parseDuration(flags.suspectAfter);
  const downMs = flags.downAfter === undefined ? vssTimings.downAfterMs : parseDuration(flags.downAfter);
  if (suspectMs <= 0 || downMs <= suspectMs) {
    throw new UsageError(`--down-after (${downMs} ms) must be longer than --suspect-after (${suspectMs} ms), and both above 0`);
  }
  return [
    ...(flags.suspectAfter === undefined ? [] : ["--suspect-after", flags.suspectAfter]),
    ...(flags.downAfter === undefined ? [] : ["--down-after", flags.downAfter]),
  ];
}

function printBanner(vss: LocalVss, dir: string, restart: boolean): void {
  const described = vss.describe();
  process.stdout.write(
    [
      `mictlanx VSS is up (data in ${dir}, logs in ${dir}/logs; ${restart ? "a child that dies is restarted" : "--no-restart: a child that dies stays dead"})`,
      `  spm      ${described.spm}  ${vss.spm.metricsUrl ?? ""}`,
      ...vss.routers.map((router) => `  router   ${router.address}  ${router.metricsUrl ?? ""}`),
      ...vss.peers.map((peer) => `  peer     ${peer.address}  ${peer.id}  ${peer.metricsUrl ?? ""}  ${peer.data}`),
      `try:  mictlanx put demo/hello.txt ./README.md && mictlanx get demo/hello.txt -o -`,
      `      mictlanx status      (Ctrl-C here stops the VSS)`,
      "",
    ].join("\n"),
  );
}

function describeGiveUp(why: GiveUp): string {
  const where = why.logFile ? `last lines of ${why.logFile}:` : "its log is off";
  return [
    `mictlanx up: ${why.name} died ${why.deaths} times within ${limits.upRestartWindowMs / 1000} s (last: ${why.lastExit}); not restarting it again.`,
    where,
    ...why.logTail.map((line) => `  | ${line}`),
    "",
  ].join("\n");
}
