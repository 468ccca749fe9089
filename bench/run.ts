// The whole benchmark in one go: baselines (raw disk, raw loopback TCP and the peer alone, each
// plain and over TLS) and mictlanx itself through a fresh local VSS (3 peers, 1 router, rf 2,
// TLS and access keys on), measured in the same run on the same machine, printed as one table
// with ratios and the targets. Last, 16 balls of 1 GiB streamed at once (bench/streams.ts;
// 32 GiB of replicas on disk while they last).
//
//   npm run build && bun bench/run.ts            (minutes on 2 cores, most of them the streams)
//   bun bench/run.ts --quick                     (smaller counts, for a smoke run)
//   bun bench/run.ts --compare FILE              (also each figure ÷ the same one of an earlier
//                                                 run's JSON, e.g. bench/results/previous.json)
//   bun bench/run.ts --no-round1                 (without the round-1 commit's CPU baseline)
import { closeSync, existsSync, fdatasyncSync, renameSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { startLocalVss, type LocalVss } from "../src/local/vss.ts";
import { RpcConnection, type ClientSecurity } from "../src/net/connection.ts";
import { clientTlsOptions, serverTlsOptions, TlsSource } from "../src/net/tls.ts";
import { prepareLocalSecurity, type LocalSecurity } from "../src/local/security.ts";
import { nodeFiles } from "../src/certs/certs.ts";
import { parseAddress } from "../src/net/address.ts";
import { peerOps } from "../src/protocol/peer.ts";
import { chunkChecksum, checksumHex } from "../src/lib/checksum.ts";
import type { PhaseResult } from "../src/bench/stats.ts";
import pkg from "../package.json" with { type: "json" };
import { comparisonTable, fmt, readEarlierRun, type Row } from "./compare.ts";
import { linesWithCpu } from "./phase-cpu.ts";
import { processTable, runRound1Comparison, verdictLines, type Round1Comparison } from "./round1.ts";
import { peakRssBytes } from "./proc-memory.ts";
import { concurrentStreams, type StreamsResult } from "./streams.ts";

const quick = process.argv.includes("--quick");
// The round-1 commit built and measured in this run (bench/round1.ts): CPU per 4 KiB op needs a
// same-run baseline. --no-round1 leaves it out (it builds that tree once, then ~3 VSS runs a round).
const withRound1 = !process.argv.includes("--no-round1");
const root = resolve(import.meta.dir, "..");
const binary = process.env.MICTLANX_BIN ?? join(root, "dist", "mictlanx");
const MiB = 1024 * 1024;
const KiB = 1024;

const compareAt = process.argv.indexOf("--compare");
const comparePath = compareAt === -1 ? undefined : process.argv[compareAt + 1];
if (compareAt !== -1 && (comparePath === undefined || comparePath.startsWith("--"))) {
  console.error("bench/run.ts: --compare needs a file: an earlier run's JSON, e.g. bench/results/previous.json");
  process.exit(2);
}
// Read before anything runs: a wrong path fails in a second, not after the whole bench.
const earlier = comparePath === undefined ? undefined : readEarlierRun(comparePath);

function ratioOf(numerator: number | undefined, denominator: number | undefined): number {
  return numerator === undefined || denominator === undefined || denominator === 0 ? 0 : numerator / denominator;
}

/** Start-up of the binary as a user's shell sees it: the median of `mictlanx --version` runs. */
function startupMs(runs: number): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const done = Bun.spawnSync([binary, "--version"], { stdout: "ignore", stderr: "ignore" });
    if (done.exitCode !== 0) throw new Error(`${binary} --version exited ${done.exitCode}`);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? 0;
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

// --- baselines --------------------------------------------------------------------------------

function rawDiskSequential(dir: string, totalBytes: number, pieceBytes: number): number {
  const path = join(dir, "raw-seq.bin");
  const piece = crypto.getRandomValues(new Uint8Array(Math.min(pieceBytes, 65_536)));
  const buffer = new Uint8Array(pieceBytes);
  for (let at = 0; at < pieceBytes; at += piece.byteLength) buffer.set(piece.subarray(0, Math.min(piece.byteLength, pieceBytes - at)), at);
  const fd = openSync(path, "w");
  const started = performance.now();
  for (let written = 0; written < totalBytes; written += pieceBytes) {
    writeSync(fd, buffer);
    fdatasyncSync(fd); // like the engine: every acknowledged piece is on disk
  }
  const seconds = (performance.now() - started) / 1000;
  closeSync(fd);
  rmSync(path);
  return totalBytes / seconds / 1e6;
}

function rawDiskSmallRecords(dir: string, records: number, recordBytes: number, batch: number): number {
  const path = join(dir, "raw-small.bin");
  const joined = crypto.getRandomValues(new Uint8Array(recordBytes * batch > 65_536 ? 65_536 : recordBytes * batch));
  const fd = openSync(path, "w");
  const started = performance.now();
  for (let done = 0; done < records; done += batch) {
    writeSync(fd, joined.byteLength === recordBytes * batch ? joined : new Uint8Array(recordBytes * batch));
    fdatasyncSync(fd); // one fsync per batch, as group commit does
  }
  const seconds = (performance.now() - started) / 1000;
  closeSync(fd);
  rmSync(path);
  return records / seconds;
}

/** What rawLoopbackTcp's two ends are given for TLS: the server's certificate, and what the client checks it against. */
interface LoopbackTls {
  server: ReturnType<typeof serverTlsOptions>;
  client: ReturnType<typeof clientTlsOptions>;
}

/**
 * Bytes one way over one loopback connection, as fast as the sender can write: MB/s. With
 * `tls`, the same over TLS with the VSS's certificates, as its nodes connect (mutual TLS), so
 * the figure is the ceiling for a TLS hop of that VSS.
 */
async function rawLoopbackTcp(totalBytes: number, tls?: LoopbackTls): Promise<number> {
  let received = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => (done = resolve));
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    ...(tls ? { tls: tls.server } : {}),
    socket: {
      data: (_socket, data) => {
        received += data.byteLength;
        if (received >= totalBytes) done();
      },
    },
  });
  const piece = new Uint8Array(MiB);
  let drained: () => void = () => {};
  let handshaken: (error?: Error) => void = () => {};
  // Under TLS nothing may be written before the handshake is done (Bun drops it).
  const handshake = new Promise<void>((resolve, reject) => (handshaken = (error) => (error ? reject(error) : resolve())));
  const client = await Bun.connect({
    hostname: "127.0.0.1",
    port: server.port,
    ...(tls ? { tls: tls.client } : {}),
    socket: {
      data: () => {},
      drain: () => drained(),
      handshake: (_socket, success, authorizationError) => handshaken(success ? undefined : new Error(`raw loopback TLS handshake failed: ${authorizationError?.message ?? "not authorized"}`)),
    },
  });
  if (tls) await handshake;
  const started = performance.now();
  let sent = 0;
  while (sent < totalBytes) {
    let offset = 0;
    while (offset < piece.byteLength) {
      const wrote = client.write(piece.subarray(offset));
      if (wrote > 0) offset += wrote;
      if (offset < piece.byteLength) await new Promise<void>((resolve) => (drained = resolve));
    }
    sent += piece.byteLength;
  }
  await finished;
  const seconds = (performance.now() - started) / 1000;
  client.end();
  server.stop(true);
  return totalBytes / seconds / 1e6;
}

/** Both ends of rawLoopbackTcp over TLS: the bench's router certificate (issued by the VSS's CA for 127.0.0.1) serves and connects. */
async function loopbackTlsOf(security: LocalSecurity): Promise<LoopbackTls> {
  if (security.insecure) throw new Error("raw loopback TCP over TLS needs a VSS with TLS");
  const source = await benchRouterTls(security);
  return { server: serverTlsOptions(source.current), client: clientTlsOptions(source.current, "127.0.0.1") };
}

/** The certificate the baselines use as a router of the VSS would: issued once, in the VSS's CA. */
async function benchRouterTls(security: Extract<LocalSecurity, { insecure: false }>): Promise<TlsSource> {
  await security.roleArgs("router", "bench-router");
  return new TlsSource(nodeFiles(security.certsDir, "bench-router"));
}

/** Run `op(index)` for indexes 0..count-1 with `concurrency` in flight; returns operations per second. */
async function ratePerSecond(count: number, concurrency: number, op: (index: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await op(next++);
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

/** chunk.put straight to one peer process at a fixed concurrency: the data plane without router or SPM. */
/** How the baselines call a peer: as a router of this VSS would (its own certificate, issued for the bench), or plain TCP without TLS. */
async function asRouterOf(vss: LocalVss): Promise<{ identity?: { role: string; id: string }; security?: ClientSecurity }> {
  if (vss.security.insecure) return {};
  return { identity: { role: "router", id: "bench-router" }, security: { tls: await benchRouterTls(vss.security) } };
}

async function peerAlone(vss: LocalVss, address: string, count: number, size: number, concurrency: number): Promise<number> {
  const connection = await RpcConnection.open(parseAddress(address), { role: "peer", ...(await asRouterOf(vss)) });
  const data = crypto.getRandomValues(new Uint8Array(Math.min(size, 65_536)));
  const payload = new Uint8Array(size);
  for (let at = 0; at < size; at += data.byteLength) payload.set(data.subarray(0, Math.min(data.byteLength, size - at)), at);
  const checksum = checksumHex(chunkChecksum(payload));
  try {
    return await ratePerSecond(count, concurrency, async (index) => {
      await connection.call("chunk.put", { bucket: "baseline", ball: `alone-${size}`, index, data: payload, checksum });
    });
  } finally {
    connection.close();
  }
}

/** chunk.get straight from one peer of what peerAlone put: reads without router or SPM. */
async function peerAloneGets(vss: LocalVss, address: string, count: number, size: number, concurrency: number): Promise<number> {
  const connection = await RpcConnection.open(parseAddress(address), { role: "peer", ...(await asRouterOf(vss)) });
  try {
    return await ratePerSecond(count, concurrency, async (index) => {
      // Parsed as the router parses it, so the baseline pays what a real reader pays.
      const reply = peerOps["chunk.get"].result.parse(await connection.call("chunk.get", { bucket: "baseline", ball: `alone-${size}`, index }));
      if (reply.data.byteLength !== size) throw new Error(`peer returned ${reply.data.byteLength} bytes of chunk ${index}, expected ${size}`);
    });
  } finally {
    connection.close();
  }
}

interface PeerAloneFigures {
  smallPuts: number;
  smallGets: number;
  bigMBs: number;
}

/** The three peer-alone figures, from the VSS's first peer, as its router would call it (TLS or not, as the VSS runs). */
async function peerAloneFigures(vss: LocalVss): Promise<PeerAloneFigures> {
  const address = vss.peers[0]!.address;
  const smallPuts = await peerAlone(vss, address, quick ? 3_000 : 20_000, 4 * KiB, 16);
  const smallGets = await peerAloneGets(vss, address, quick ? 3_000 : 20_000, 4 * KiB, 16);
  const bigMBs = ((await peerAlone(vss, address, quick ? 32 : 128, MiB, 4)) * MiB) / 1e6;
  return { smallPuts, smallGets, bigMBs };
}

/**
 * `measure` against the peer of a second VSS, --insecure, of one peer and no router, up only
 * for as long as it runs: the plain baseline, with the main VSS idle beside it as it is for
 * the TLS one, and gone before the main VSS's own runs.
 */
async function withPlainPeer<T>(dir: string, measure: (vss: LocalVss) => Promise<T>): Promise<T> {
  mkdirSync(dir, { recursive: true });
  const plain = await startLocalVss({ dir, peers: 1, routers: 0, basePort: 0, command: [binary], insecure: true });
  try {
    return await measure(plain);
  } finally {
    await plain.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The streams phase's rows: MB/s each way, and the router's and highest peer's peak resident memory. */
function streamRows(streams: StreamsResult, count: number, label: string): Row[] {
  const name = `${count} concurrent ${label} streams`;
  // Reset VmHWM: the streams' own peak. Otherwise the whole-life peak, which the name says.
  const span = streams.peakSince === "streams" ? "" : " (VmHWM since start, incl. the 64 MiB phase)";
  const peers = Object.entries(streams.peakBytes).filter(([who]) => who.startsWith("peer-"));
  const peerPeak = Math.max(0, ...peers.map(([, bytes]) => bytes));
  const target = { value: 256, higherIsBetter: false };
  return [
    { what: `${name}, PUT, rf 2`, value: streams.putMBs, unit: "MB/s" },
    { what: `${name}, GET`, value: streams.getMBs, unit: "MB/s" },
    { what: `router peak RSS, ${name}${span}`, value: (streams.peakBytes.router ?? 0) / MiB, unit: "MiB", target },
    { what: `peer peak RSS, ${name}${span}, highest peer`, value: peerPeak / MiB, unit: "MiB", target },
  ];
}

// --- mictlanx through the VSS -----------------------------------------------------------------

/** One line of `mictlanx bench --json`. */
type Phase = PhaseResult;

interface PhaseCpu {
  op: string;
  /** CPU seconds (user + system, all threads, from /proc/PID/stat) each process spent in the phase. */
  seconds: Record<string, number>;
}

/**
 * Run `mictlanx bench` against the VSS. Per phase, the CPU seconds of the bench client and of
 * each role in `roles` (read as each phase's result line arrives); at the end each watched
 * process's VmHWM, its peak resident memory over its whole life (not a sample that could miss
 * a short peak).
 */
async function bench(vss: LocalVss, args: string[], roles: Record<string, number>, watch: number[]): Promise<{ phases: Phase[]; cpu: PhaseCpu[]; rssMaxBytes: Map<number, number> }> {
  // --keep: deleting the balls after the last phase would make garbage that the peers collect
  // during the next measurement.
  // The VSS's admin key, as `mictlanx bench` finds it (none for an --insecure VSS).
  const env = { ...process.env, MICTLANX_CREDENTIALS: vss.security.insecure ? "" : vss.security.credentialsPath };
  const proc = Bun.spawn([binary, "bench", "--router", vss.routers[0]!.address, "--json", "--keep", ...args], { stdout: "pipe", stderr: "inherit", env });
  const pids: Record<string, number> = { client: proc.pid, ...roles };
  const phases: Phase[] = [];
  const cpu: PhaseCpu[] = [];
  for await (const { line, cpuSeconds: spent } of linesWithCpu(proc.stdout, pids)) {
    const phase = JSON.parse(line) as Phase;
    phases.push(phase);
    cpu.push({ op: phase.op, seconds: Object.fromEntries(Object.entries(spent).map(([name, seconds]) => [name, Math.round(seconds * 100) / 100])) });
  }
  await proc.exited;
  const rssMaxBytes = new Map<number, number>(watch.map((pid) => [pid, peakRssBytes(pid)]));
  return { phases, cpu, rssMaxBytes };
}

function cpuTable(title: string, size: string, phases: Phase[], cpu: PhaseCpu[]): string {
  const names = Object.keys(cpu[0]?.seconds ?? {});
  const lines = [`| ${title} | MB/s | ${names.join(" | ")} |`, `|---|---:|${names.map(() => "---:").join("|")}|`];
  for (const [i, phase] of phases.entries()) {
    const seconds = cpu[i]?.seconds ?? {};
    lines.push(`| ${size} ${phase.op.toUpperCase()} | ${fmt(phase.mbPerSec)} | ${names.map((name) => (seconds[name] ?? 0).toFixed(2)).join(" | ")} |`);
  }
  return lines.join("\n");
}

/**
 * CPU per ball, by process, and the rate two cores could reach if CPU were the only limit
 * (2 × 10^6 µs ÷ the total): how far a phase is from its target before any waiting counts.
 */
function perBallTable(phases: Phase[], cpu: PhaseCpu[]): string {
  const names = Object.keys(cpu[0]?.seconds ?? {});
  const cores = cpus().length;
  const lines = [
    `| 4 KiB, CPU µs per ball | ${names.join(" | ")} | total | ${cores} cores ÷ total | measured |`,
    `|---|${names.map(() => "---:").join("|")}|---:|---:|---:|`,
  ];
  for (const [i, phase] of phases.entries()) {
    const seconds = cpu[i]?.seconds ?? {};
    const micros = names.map((name) => ((seconds[name] ?? 0) / phase.count) * 1e6);
    const total = micros.reduce((sum, value) => sum + value, 0);
    const ceiling = total > 0 ? (cores * 1e6) / total : 0;
    lines.push(`| ${phase.op.toUpperCase()} | ${micros.map((value) => value.toFixed(0)).join(" | ")} | ${total.toFixed(0)} | ${fmt(ceiling)}/s | ${fmt(phase.opsPerSec)}/s |`);
  }
  return lines.join("\n");
}

/** The same for large balls, per GiB moved: the MB/s two cores could reach on CPU alone. */
function perGibTable(phases: Phase[], cpu: PhaseCpu[]): string {
  const names = Object.keys(cpu[0]?.seconds ?? {});
  const cores = cpus().length;
  const lines = [
    `| 64 MiB, CPU s per GiB | ${names.join(" | ")} | total | ${cores} cores ÷ total | measured |`,
    `|---|${names.map(() => "---:").join("|")}|---:|---:|---:|`,
  ];
  for (const [i, phase] of phases.entries()) {
    const seconds = cpu[i]?.seconds ?? {};
    const gib = (phase.size * phase.count) / 1024 ** 3;
    const perGib = names.map((name) => (gib > 0 ? (seconds[name] ?? 0) / gib : 0));
    const total = perGib.reduce((sum, value) => sum + value, 0);
    const ceilingMBs = total > 0 ? (cores / total) * (1024 ** 3 / 1e6) : 0;
    lines.push(`| ${phase.op.toUpperCase()} | ${perGib.map((value) => value.toFixed(2)).join(" | ")} | ${total.toFixed(2)} | ${fmt(ceilingMBs)} MB/s | ${fmt(phase.mbPerSec)} MB/s |`);
  }
  return lines.join("\n");
}

function table(rows: Row[]): string {
  const lines = ["| measure | value | baseline (same run) | ratio | target | met |", "|---|---:|---|---:|---:|:-:|"];
  for (const row of rows) {
    const ratio = row.baseline ? `${((row.value / row.baseline.value) * 100).toFixed(0)} %` : "";
    const baseline = row.baseline ? `${row.baseline.what}: ${fmt(row.baseline.value)}` : "";
    const target = row.target ? `${row.target.higherIsBetter ? "≥" : "≤"} ${fmt(row.target.value)}` : "";
    const met = row.target ? ((row.target.higherIsBetter ? row.value >= row.target.value : row.value <= row.target.value) ? "yes" : "no") : "";
    lines.push(`| ${row.what} | ${fmt(row.value)} ${row.unit} | ${baseline} | ${ratio} | ${target} | ${met} |`);
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "mictlanx-bench-"));
  const rf = 2;
  const smallCount = quick ? 3_000 : 20_000;
  const bigCount = quick ? 4 : 16;
  const streamCount = 16;
  const streamBallBytes = (quick ? 64 : 1024) * MiB;
  const streamLabel = quick ? "64 MiB" : "1 GiB";
  try {
    log("baselines: raw disk, raw loopback TCP plain and over TLS…");
    const diskMBs = rawDiskSequential(work, 64 * MiB * (quick ? 1 : 4), MiB);
    const diskSmall = rawDiskSmallRecords(work, quick ? 5_000 : 20_000, 4 * KiB, 16);
    const tcpBytes = (quick ? 256 : 1024) * MiB;
    const tcpMBs = await rawLoopbackTcp(tcpBytes);
    // The VSS's CA and certificates are made now (the VSS finds them and keeps them), so the TLS
    // loopback runs right after the plain one with nothing else running, as it did.
    const vssDir = join(work, "vss");
    mkdirSync(vssDir, { recursive: true });
    const tcpTlsMBs = await rawLoopbackTcp(tcpBytes, await loopbackTlsOf(await prepareLocalSecurity(vssDir, false)));

    log(`starting a VSS (3 peers, 1 router) from ${binary}…`);
    const vss = await startLocalVss({ dir: vssDir, peers: 3, routers: 1, basePort: 0, command: [binary] });
    try {
      log("the peer alone, over TLS…");
      const peerTls = await peerAloneFigures(vss);
      log("the peer alone, plain (a second VSS, --insecure, 1 peer, up only for this)…");
      const peerPlain = await withPlainPeer(join(work, "plain"), peerAloneFigures);
      log("mictlanx 4 KiB put and get…");
      const roles: Record<string, number> = { spm: vss.spm.pid, router: vss.routers[0]!.pid, ...Object.fromEntries(vss.peers.map((peer) => [peer.id, peer.pid])) };
      const small = await bench(vss, ["--size", "4KiB", "--count", String(smallCount), "--concurrency", "16", "--rf", String(rf)], roles, []);
      // The same 16 MiB workload at concurrency 2 and 16: parallel clients must not collapse it.
      log("mictlanx 16 MiB put and get at concurrency 2, then 16…");
      const mid2 = await bench(vss, ["--size", "16MiB", "--count", String(quick ? 8 : 32), "--concurrency", "2", "--rf", String(rf)], roles, []);
      const mid16 = await bench(vss, ["--size", "16MiB", "--count", String(quick ? 16 : 64), "--concurrency", "16", "--rf", String(rf)], roles, []);
      log("mictlanx 64 MiB put and get…");
      const watch = [vss.routers[0]!.pid, ...vss.peers.map((peer) => peer.pid)];
      const big = await bench(vss, ["--size", "64MiB", "--count", String(bigCount), "--concurrency", "2", "--rf", String(rf)], roles, watch);
      log(`${streamCount} concurrent streams of ${streamLabel} each, put then get, through the client library…`);
      const streams = await concurrentStreams(vss, {
        streams: streamCount,
        ballBytes: streamBallBytes,
        rf,
        watch: { router: vss.routers[0]!.pid, ...Object.fromEntries(vss.peers.map((peer) => [peer.id, peer.pid])) },
        log,
      });
      log(`streams: put ${fmt(streams.putMBs)} MB/s, get ${fmt(streams.getMBs)} MB/s; this bench process peaked at ${fmt(streams.clientPeakBytes / MiB)} MiB`);
      let round1: Round1Comparison | undefined;
      if (withRound1) {
        log(`the round-1 commit beside this tree, CPU per 4 KiB ball (bench/round1.ts; --no-round1 skips it)…`);
        round1 = await runRound1Comparison({ rounds: quick ? 1 : 2, count: quick ? 3_000 : 10_000, binary });
      }
      const mbps = (phases: Phase[], op: string) => phases.find((phase) => phase.op === op)?.mbPerSec ?? 0;
      const put4 = small.phases.find((phase) => phase.op === "put");
      const get4 = small.phases.find((phase) => phase.op === "get");
      const put64 = big.phases.find((phase) => phase.op === "put");
      const get64 = big.phases.find((phase) => phase.op === "get");
      const routerRss = big.rssMaxBytes.get(vss.routers[0]!.pid) ?? 0;
      const peerRss = Math.max(...vss.peers.map((peer) => big.rssMaxBytes.get(peer.pid) ?? 0));
      const rows: Row[] = [
        { what: "raw disk, 1 MiB writes each fdatasync'd", value: diskMBs, unit: "MB/s" },
        { what: "raw disk, 4 KiB records, one fdatasync per 16", value: diskSmall, unit: "records/s" },
        { what: "raw loopback TCP", value: tcpMBs, unit: "MB/s" },
        { what: "raw loopback TCP over TLS", value: tcpTlsMBs, unit: "MB/s", baseline: { what: "raw loopback TCP", value: tcpMBs } },
        { what: "peer alone plain, 4 KiB chunk.put, concurrency 16", value: peerPlain.smallPuts, unit: "chunks/s", baseline: { what: "raw 4 KiB records/s", value: diskSmall } },
        { what: "peer alone over TLS, 4 KiB chunk.put, concurrency 16", value: peerTls.smallPuts, unit: "chunks/s", baseline: { what: "peer alone plain", value: peerPlain.smallPuts } },
        { what: "peer alone plain, 4 KiB chunk.get, concurrency 16", value: peerPlain.smallGets, unit: "chunks/s" },
        { what: "peer alone over TLS, 4 KiB chunk.get, concurrency 16", value: peerTls.smallGets, unit: "chunks/s", baseline: { what: "peer alone plain", value: peerPlain.smallGets } },
        { what: "peer alone plain, 1 MiB chunk.put, concurrency 4", value: peerPlain.bigMBs, unit: "MB/s", baseline: { what: "raw disk MB/s", value: diskMBs } },
        { what: "peer alone over TLS, 1 MiB chunk.put, concurrency 4", value: peerTls.bigMBs, unit: "MB/s", baseline: { what: "peer alone plain", value: peerPlain.bigMBs } },
        // The VSS under test runs TLS on every link: its ratios are to the TLS baselines.
        { what: "4 KiB PUT, c16, rf 2", value: put4?.opsPerSec ?? 0, unit: "balls/s", baseline: { what: "peer alone over TLS ÷ rf", value: peerTls.smallPuts / rf }, target: { value: 5_000, higherIsBetter: true } },
        { what: "4 KiB PUT p99", value: put4?.p99Ms ?? 0, unit: "ms", target: { value: 10, higherIsBetter: false } },
        { what: "4 KiB PUT p99 ÷ p50", value: ratioOf(put4?.p99Ms, put4?.p50Ms), unit: "×", target: { value: 3, higherIsBetter: false } },
        { what: "4 KiB GET, c16", value: get4?.opsPerSec ?? 0, unit: "balls/s", baseline: { what: "peer alone over TLS gets", value: peerTls.smallGets }, target: { value: 12_000, higherIsBetter: true } },
        { what: "4 KiB GET p99", value: get4?.p99Ms ?? 0, unit: "ms", target: { value: 10, higherIsBetter: false } },
        { what: "4 KiB GET p99 ÷ p50", value: ratioOf(get4?.p99Ms, get4?.p50Ms), unit: "×", target: { value: 3, higherIsBetter: false } },
        { what: "64 MiB PUT, rf 2", value: put64?.mbPerSec ?? 0, unit: "MB/s", baseline: { what: "raw disk ÷ rf", value: diskMBs / rf }, target: { value: (0.8 * diskMBs) / rf, higherIsBetter: true } },
        { what: "64 MiB GET", value: get64?.mbPerSec ?? 0, unit: "MB/s", baseline: { what: "raw loopback TCP over TLS", value: tcpTlsMBs }, target: { value: 700, higherIsBetter: true } },
        { what: "16 MiB PUT c16 ÷ the same at c2", value: 100 * ratioOf(mbps(mid16.phases, "put"), mbps(mid2.phases, "put")), unit: "%", target: { value: 95, higherIsBetter: true } },
        { what: "16 MiB GET c16 ÷ the same at c2", value: 100 * ratioOf(mbps(mid16.phases, "get"), mbps(mid2.phases, "get")), unit: "%", target: { value: 95, higherIsBetter: true } },
        // Read at the end of the 64 MiB phase, before the streams reset VmHWM: the whole run but the streams, which have rows of their own.
        { what: "router peak RSS (VmHWM, whole run)", value: routerRss / MiB, unit: "MiB", target: { value: 256, higherIsBetter: false } },
        { what: "peer peak RSS (VmHWM, whole run, highest peer)", value: peerRss / MiB, unit: "MiB", target: { value: 256, higherIsBetter: false } },
        ...streamRows(streams, streamCount, streamLabel),
        ...(round1?.rows ?? []),
        { what: "mictlanx --version start-up (median of 21)", value: startupMs(21), unit: "ms", target: { value: 50, higherIsBetter: false } },
      ];
      const errors = [...small.phases, ...big.phases, ...mid2.phases, ...mid16.phases].reduce((sum, phase) => sum + phase.errors, 0) + streams.errors.length;
      const bunVersion = Bun.spawnSync([binary, "--version"]).stdout.toString().trim();
      const machine = `${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 1024 ** 3).toFixed(0)} GiB; mictlanx ${pkg.version} (${bunVersion}), Bun ${Bun.version}; ${new Date().toISOString().slice(0, 10)}`;
      const cpu = [
        "CPU seconds per phase, per process (user + system, all threads, from /proc/PID/stat):",
        "",
        cpuTable("phase", "4 KiB", small.phases, small.cpu),
        "",
        perBallTable(small.phases, small.cpu),
        "",
        cpuTable("phase", "64 MiB", big.phases, big.cpu),
        "",
        perGibTable(big.phases, big.cpu),
        ...(round1 === undefined
          ? []
          : ["", `CPU µs per 4 KiB ball by process, against the round-1 commit ${round1.commit} (medians of ${round1.rounds.length} interleaved round(s), ${round1.count} balls a phase):`, "", processTable(round1, "put"), "", processTable(round1, "get"), "", ...verdictLines(round1)]),
      ].join("\n");
      const compared = earlier === undefined ? [] : ["", comparisonTable(rows, earlier)];
      const streamErrors = streams.errors.length === 0 ? [] : ["", `errors in the streams phase (${streams.errors.length}):`, ...streams.errors.slice(0, 16).map((error) => `- ${error}`)];
      const output = [`machine: ${machine}`, `errors in all phases: ${errors}`, ...streamErrors, "", table(rows), "", cpu, ...compared].join("\n");
      console.log(output);
      mkdirSync(join(root, "bench", "results"), { recursive: true });
      // The run before this one stays as previous.json: --compare bench/results/previous.json.
      const latestJson = join(root, "bench", "results", "latest.json");
      if (existsSync(latestJson)) renameSync(latestJson, join(root, "bench", "results", "previous.json"));
      writeFileSync(join(root, "bench", "results", "latest.md"), `${output}\n`);
      writeFileSync(join(root, "bench", "results", "latest.json"), JSON.stringify({ machine, rows, phases: [...small.phases, ...big.phases], cpu: [...small.cpu, ...big.cpu], streams, ...(round1 === undefined ? {} : { round1 }) }, null, 2));
    } finally {
      await vss.stop();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
