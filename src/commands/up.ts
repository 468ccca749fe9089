// `mictlanx up`: a whole local VSS in one command; Ctrl-C (or SIGTERM) stops every process.
// A child that dies is started again (src/local/supervisor.ts) unless --no-restart; one that
// keeps dying stops the VSS, and `up` exits 1 with its last log lines.
import { defaults as defaultsOf, parsePort, parsePositiveInt, upAddresses } from "../lib/defaults.ts";
import { ConflictError, MictlanxError, UsageError, toMictlanxError } from "../lib/errors.ts";
import { prepareDataDir } from "../lib/data-dir.ts";
import { limits, vssTimings } from "../lib/limits.ts";
import { parseDuration } from "../lib/size.ts";
import { watchParent } from "./signals.ts";
import type { GiveUp } from "../local/supervisor.ts";
import type { LocalVss, VssFile } from "../local/vss.ts";
import { resolve } from "node:path";
import { defaultCredentialsPath } from "../client/credentials.ts";

export interface UpFlags {
  data: string;
  peers: string;
  routers: string;
  port: string;
  /** commander's --no-restart: false turns supervision off. */
  restart: boolean;
  suspectAfter?: string;
  downAfter?: string;
  /** No TLS and no access keys: a quick look on one machine. */
  insecure?: boolean;
  /** Passed to every router: virtual-hosted-style S3 under this domain. */
  s3Domain?: string;
  /** Several SPMs on PostgreSQL and etcd from this machine's packages (docs/ha.md). */
  ha?: boolean;
}

export async function runUpCommand(flags: UpFlags): Promise<void> {
  const { startLocalVss, runningVss, vssFileIn, alivePidsOf } = await import("../local/vss.ts");
  const { superviseVss } = await import("../local/supervisor.ts");
  const peers = parsePositiveInt(flags.peers, "--peers");
  const routers = parsePositiveInt(flags.routers, "--routers");
  const basePort = parsePort(flags.port);
  const spmArgs = livenessArgs(flags);
  const dir = prepareDataDir(flags.data);
  const running = await runningVss(dir);
  if (running) throw alreadyRunning(dir, running);
  const ha = flags.ha === true;
  const spms = ha ? `${limits.upHaSpms} spms on PostgreSQL and etcd` : "1 spm";
  process.stderr.write(`starting a VSS in ${dir}: ${spms}, ${routers} router(s), ${peers} peer(s)…\n`);
  const vss = await startLocalVss({ dir, peers, routers, basePort, spmArgs, insecure: flags.insecure === true, s3: true, ha, ...(flags.s3Domain === undefined ? {} : { routerArgs: ["--s3-domain", flags.s3Domain] }) }).catch((error: unknown) => {
    // The VSS of this dir may be running and not answering (yet): say so with the start's error.
    const file = vssFileIn(dir);
    const alive = file ? alivePidsOf(file) : [];
    if (alive.length === 0) throw error;
    const typed = toMictlanxError(error);
    throw new MictlanxError(typed.code, `${typed.message}; ${dir}/vss.json lists pids that are alive (${alive.join(", ")}): a VSS may already be running in that dir`, { cause: error });
  });
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

/** A second `up` in a DIR whose VSS is running would start a second SPM on the same catalog. */
function alreadyRunning(dir: string, running: VssFile): MictlanxError {
  const owner = running.ownerPid === undefined ? "" : ` (pid ${running.ownerPid})`;
  return new ConflictError(
    `a VSS is already running in ${dir}: its SPM answers at ${running.spm} (pid ${running.spmPid}; see ${dir}/vss.json). ` +
      `Use it (mictlanx status --spm ${running.spm}), stop it (Ctrl-C where its mictlanx up${owner} runs), or give another --data`,
  );
}

function printBanner(vss: LocalVss, dir: string, restart: boolean): void {
  const described = vss.describe();
  process.stdout.write(
    [
      `mictlanx VSS is up (data in ${dir}, logs in ${dir}/logs; ${restart ? "a child that dies is restarted" : "--no-restart: a child that dies stays dead"})`,
      ...vss.spms.map((spm) => `  spm      ${spm.address}  ${spm.metricsUrl ?? ""}`),
      ...(vss.services ? [`  postgres ${vss.services.postgres.address}  pid ${vss.services.postgres.pid}  ${vss.services.catalogUrl}`, `  etcd     ${vss.services.etcd.address}  pid ${vss.services.etcd.pid}  ${vss.services.coordinationUrl}`] : []),
      ...vss.routers.map((router) => `  router   ${router.address}  ${router.metricsUrl ?? ""}${router.s3Url ? `  s3 ${router.s3Url}` : ""}`),
      ...vss.peers.map((peer) => `  peer     ${peer.address}  ${peer.id}  ${peer.metricsUrl ?? ""}  ${peer.data}`),
      securityLine(described),
      ...tryLines(described),
      "",
    ].join("\n"),
  );
}

/**
 * What to type next. The client commands find a VSS at the default addresses by themselves;
 * anywhere else (--port 0, another --port) the lines carry --router and --spm, and say how to
 * set them once for the shell.
 */
export function tryLines(described: { spm: string; spms?: { address: string }[] | undefined; routers: string[]; credentials?: string | undefined }): string[] {
  const standard = upAddresses(defaultsOf.upBasePort, described.routers.length, 0);
  const routers = described.routers.join(",");
  // Several SPMs (up --ha): every one, so the client finds whichever leads.
  const spms = described.spms !== undefined && described.spms.length > 1 ? described.spms.map((spm) => spm.address).join(",") : described.spm;
  const routersAtDefault = routers === standard.routers.join(",");
  const spmAtDefault = spms === standard.spm;
  const atDefaults = routersAtDefault && spmAtDefault;
  const router = routersAtDefault ? "" : ` --router ${routers}`;
  const spm = spmAtDefault ? "" : ` --spm ${spms}`;
  // The CLI finds ./.mictlanx/credentials.json by itself; a VSS elsewhere needs it named.
  const found = described.credentials === undefined || resolve(described.credentials) === defaultCredentialsPath();
  const credentials = found ? "" : ` MICTLANX_CREDENTIALS=${described.credentials}`;
  const exports = `${routersAtDefault ? "" : ` MICTLANX_ROUTERS=${routers}`}${spmAtDefault ? "" : ` MICTLANX_SPM=${spms}`}${credentials}`;
  return [
    `try:  mictlanx put${router} demo/hello.txt ./README.md && mictlanx get${router} demo/hello.txt -o -`,
    `      mictlanx status${spm}      (Ctrl-C here stops the VSS)`,
    ...(exports === "" ? [] : [`      ${atDefaults ? "first" : "or"}, once for this shell: export${exports}`]),
  ];
}

/** Whether the VSS checks who calls it, and where its admin key is. */
function securityLine(described: { insecure?: boolean | undefined; credentials?: string | undefined }): string {
  if (described.insecure !== false || described.credentials === undefined) return "  INSECURE: no TLS and no access keys (--insecure); anyone who can reach these ports can read, write and delete";
  return `  TLS on every link; admin key in ${described.credentials} (mode 0600; the CLI finds it when run from where up ran)`;
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
