// A candidate of a LeaderElection in a process of its own, so a test can freeze it (SIGSTOP)
// as a real paused leader would be: its timers, keepalives and clock reads all stop together.
// It prints one JSON line per event on stdout ({"event":"elected","term":…}, {"event":"demoted",
// "reason":…}, {"event":"leader",…}) and exits when its parent (the test) is gone.
//
//   bun test/support/etcd-candidate.ts ETCD_URL KEY ID TTL_MS
import { EtcdClient } from "../../src/coordination/etcd.ts";
import { LeaderElection } from "../../src/coordination/election.ts";

const [url, key, id, ttlText] = process.argv.slice(2);
if (url === undefined || key === undefined || id === undefined || ttlText === undefined) {
  console.error("usage: etcd-candidate.ts ETCD_URL KEY ID TTL_MS");
  process.exit(2);
}

const say = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ ...line, monoMs: Math.round(performance.now()) })}\n`);
const election = new LeaderElection({
  etcd: new EtcdClient(url),
  key,
  candidate: { id, address: `${id}.test:7000` },
  leaseTtlMs: Number(ttlText),
  onElected: (term) => say({ event: "elected", term }),
  onDemoted: (reason, detail) => say({ event: "demoted", reason, detail }),
  onLeaderChanged: (leader) => say({ event: "leader", leader: leader ?? null }),
  log: (line) => console.error(line),
});
election.start();

const parentPid = process.ppid;
setInterval(() => {
  try {
    process.kill(parentPid, 0);
  } catch {
    process.exit(0);
  }
}, 1_000);
