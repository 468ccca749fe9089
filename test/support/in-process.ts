// A VSS whose roles run in the test's own process, for control-plane tests that inject what a
// process cannot be given from outside: a fixed randomness, a catalog whose fsync fails, a
// stepped clock. Loopback, ports chosen free, one temp dir; stop() stops every role and removes it.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { startSpm, type RunningSpm, type SpmOptions } from "../../src/roles/spm/spm.ts";
import { startPeer, type RunningPeer } from "../../src/roles/peer/peer.ts";
import { startRouter, type RunningRouter } from "../../src/roles/router/router.ts";
import { eventually, tempDir } from "./vss.ts";
import { roleTls, sharedSecurity } from "./security.ts";

export interface InProcessVss {
  dir: string;
  spm: RunningSpm;
  peers: RunningPeer[];
  router: RunningRouter;
  /** The SPM's options, to start it again on the same catalog (with `restartSpm`). */
  spmOptions: SpmOptions;
  /** Stop the router and the SPM and start both again, the SPM on its port and catalog. */
  restartSpm(options?: Partial<SpmOptions>): Promise<void>;
  stop(): Promise<void>;
}

export async function startInProcessVss(label: string, peers: number, spm: Partial<SpmOptions> = {}): Promise<InProcessVss> {
  const dir = tempDir(label);
  // With TLS and keys as every VSS: the test process's CA and admin key (test/support/security.ts).
  const spmOptions: SpmOptions = { host: "127.0.0.1", port: 0, dir: join(dir, "spm"), suspectAfterMs: 1_000, downAfterMs: 3_000, security: await roleTls("spm", "spm"), credentialsPath: sharedSecurity.credentialsPath, ...spm };
  const routerSecurity = await roleTls("router", "router-0");
  const vss: InProcessVss = {
    dir,
    spm: await startSpm(spmOptions),
    peers: [],
    router: undefined as unknown as RunningRouter,
    spmOptions,
    restartSpm: async (options = {}) => {
      await vss.router.stop();
      await vss.spm.stop();
      vss.spm = await startSpm({ ...vss.spmOptions, port: vss.spm.port, ...options });
      vss.router = await startRouter({ host: "127.0.0.1", port: 0, spm: [vss.spm.address], security: routerSecurity });
      await eventually("the peers are back", 15_000, () => vss.spm.status().peers.filter((peer) => peer.state === "up").length === peers);
    },
    stop: async () => {
      await vss.router?.stop();
      for (const peer of vss.peers) await peer.stop().catch(() => {});
      await vss.spm.stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
  for (let i = 0; i < peers; i += 1) {
    vss.peers.push(await startPeer({ host: "127.0.0.1", port: 0, dir: join(dir, `peer-${i}`), id: `peer-${i}`, spm: [vss.spm.address], security: await roleTls("peer", `peer-${i}`) }));
  }
  await eventually(`${peers} peers up`, 10_000, () => vss.spm.status().peers.filter((peer) => peer.state === "up").length === peers);
  vss.router = await startRouter({ host: "127.0.0.1", port: 0, spm: [vss.spm.address], security: routerSecurity });
  return vss;
}
