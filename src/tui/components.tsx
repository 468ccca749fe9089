// The dashboard's view: small function components, each a pure function of the one state
// object (and the layout computed from it). No data fetching here; see app.tsx and model.ts.
import type { ReactNode } from "react";
import { Box, Text } from "ink";
import type { PeerHealth } from "../protocol/peer.ts";
import type { PeerStatus, VssStatus } from "../protocol/spm.ts";
import type { SpmEntry } from "../net/spm-status.ts";
import { healProgress, sparkline, type DashboardState, type HistoryPoint, type PeerDetail } from "./model.ts";
import { bannerText, computeLayout, peerColumns, stateText, usedText, type Layout, type PeerColumns } from "./layout.ts";
import { age, bar, bytesPerSec, count, duration, fit, formatBytes, intervalText, perSec, printable, scrubSummary } from "./format.ts";

type Colour = "green" | "yellow" | "red" | "cyan" | "magenta" | "gray" | undefined;

export function stateColour(state: PeerStatus["state"]): Colour {
  return state === "up" ? "green" : state === "suspect" ? "yellow" : "red";
}

/** One line, cut at the terminal's edge rather than wrapped (the layout counts on one row). */
function Line({ children, dim }: { children: ReactNode; dim?: boolean }) {
  return (
    <Text wrap="truncate-end" dimColor={dim ?? false}>
      {children}
    </Text>
  );
}

function Rule({ title, width, note }: { title: string; width: number; note?: string }) {
  const used = 2 + title.length + 1 + (note ? note.length + 1 : 0);
  return (
    <Line>
      <Text color="cyan">{"─ "}</Text>
      <Text bold color="cyan">
        {title}
      </Text>
      {note ? <Text dimColor>{` ${note}`}</Text> : null}
      <Text color="cyan">{` ${"─".repeat(Math.max(0, width - used - 1))}`}</Text>
    </Line>
  );
}

function Header({ state }: { state: DashboardState }) {
  const status = state.status;
  const rates = state.rates;
  const peers = status?.peers ?? [];
  const up = peers.filter((peer) => peer.state === "up").length;
  const draining = peers.filter((peer) => peer.draining).length;
  const peersColour: Colour = peers.some((peer) => peer.state === "down") ? "red" : up < peers.length ? "yellow" : "green";
  const stale = state.connection.state !== "up";
  return (
    <Box flexDirection="column">
      <Line dim={stale}>
        <Text bold>mictlanx</Text>
        {`  VSS ${status?.spm ?? state.spm}`}
        {status ? (
          <>
            {`  up ${duration(status.uptimeMs)}  peers `}
            <Text color={peersColour} bold>{`${up}/${peers.length}`}</Text>
            {" up"}
            {/* Draining peers serve reads but take no new data: a put needs rf among the rest. */}
            {draining > 0 ? <Text color="yellow">{` (${draining} draining)`}</Text> : null}
            {`  balls ${count(status.balls)}  stored ${formatBytes(status.bytes)}`}
          </>
        ) : null}
      </Line>
      <Line dim={stale}>
        {/* See Rates in model.ts for exactly what each number is. */}
        {`put ${perSec(rates.putsPerSec)}/s ${bytesPerSec(rates.putBytesPerSec)}  get ${perSec(rates.getsPerSec)}/s ${bytesPerSec(rates.getBytesPerSec)}  chunk ops ${perSec(rates.peerOpsPerSec)}/s  healing ${bytesPerSec(rates.healBytesPerSec)}`}
      </Line>
    </Box>
  );
}

const spmRoleColour: Record<SpmEntry["role"], Colour> = { leader: "green", standby: "cyan", down: "red" };

/** Several SPMs: each one's part, the leader green, standbys cyan, those that cannot be reached red. */
export function Spms({ state, rows }: { state: DashboardState; rows: number }) {
  if (rows === 0) return null;
  const stale = state.connection.state !== "up";
  const leaders = state.spms.filter((spm) => spm.role === "leader").length;
  return (
    <Line dim={stale}>
      {"SPMs"}
      {state.spms.map((spm) => (
        <Text key={spm.address}>
          {`  ${printable(spm.address)} `}
          <Text color={spmRoleColour[spm.role]} bold={spm.role !== "standby"}>
            {spm.role}
          </Text>
          {spm.term === undefined ? "" : ` (term ${spm.term})`}
        </Text>
      ))}
      {leaders === 0 ? <Text color="yellow">{"  no leader: an election is under way"}</Text> : null}
    </Line>
  );
}

export function Banner({ state, rows }: { state: DashboardState; rows: number }) {
  const text = bannerText(state);
  if (text === null || rows === 0) return null;
  const down = state.connection.state === "down";
  return (
    <Box height={rows} overflow="hidden">
      <Text wrap="wrap" bold color={down ? "white" : "yellow"} {...(down ? { backgroundColor: "red" } : {})}>
        {printable(text)}
      </Text>
    </Box>
  );
}

function pad(text: string, width: number, align: "left" | "right" = "left"): string {
  if (width <= 0) return "";
  const cut = fit(text, width - 1);
  return align === "left" ? cut.padEnd(width) : `${cut.padStart(width - 1)} `;
}

function PeerRow({ peer, selected, cols, stale }: { peer: PeerStatus; selected: boolean; cols: PeerColumns; stale: boolean }) {
  const fraction = peer.capacityBytes > 0 ? peer.usedBytes / peer.capacityBytes : 0;
  const { filled, empty } = bar(fraction, cols.bar);
  const barColour: Colour = fraction >= 0.9 ? "red" : fraction >= 0.7 ? "yellow" : "green";
  const down = peer.state === "down";
  return (
    <Line dim={stale}>
      <Text color="cyan" bold>
        {selected ? "› " : "  "}
      </Text>
      <Text inverse={selected} bold={selected}>
        {pad(printable(peer.id), cols.id)}
      </Text>
      {cols.address > 0 ? pad(printable(peer.address), cols.address) : ""}
      <Text color={stateColour(peer.state)} bold={peer.state !== "up"}>
        {pad(stateText(peer), cols.state)}
      </Text>
      {cols.bar > 0 ? (
        <>
          <Text color={barColour}>{filled}</Text>
          <Text color="gray">{empty}</Text>
          {" "}
        </>
      ) : null}
      {cols.usedText > 0 ? pad(usedText(peer), cols.usedText) : ""}
      {pad(count(peer.chunks), cols.chunks, "right")}
      {pad(down ? "–" : perSec(peer.opsPerSec), cols.ops, "right")}
      <Text color={down ? "red" : peer.state === "suspect" ? "yellow" : undefined}>{pad(age(peer.lastHeartbeatAgeMs), cols.heartbeat, "right")}</Text>
    </Line>
  );
}

function PeersTable({ state, layout }: { state: DashboardState; layout: Layout }) {
  const { columns } = state.size;
  const peers = state.status?.peers ?? [];
  const cols = peerColumns(columns, peers);
  const up = peers.filter((peer) => peer.state === "up").length;
  const shown = peers.slice(layout.peerFirst, layout.peerFirst + layout.peerLines);
  const hidden = peers.length - shown.length;
  const stale = state.connection.state !== "up";
  const names =
    "  " +
    pad("PEER", cols.id) +
    (cols.address > 0 ? pad("ADDRESS", cols.address) : "") +
    pad("STATE", cols.state) +
    (cols.bar > 0 ? pad("USED", cols.bar + 1) : "") +
    (cols.usedText > 0 ? pad(cols.bar > 0 ? "" : "USED/CAP", cols.usedText) : "") +
    pad("CHUNKS", cols.chunks, "right") +
    pad("OPS/S", cols.ops, "right") +
    pad("LAST HB", cols.heartbeat, "right");
  return (
    <Box flexDirection="column">
      {layout.peersTitle ? <Rule title="Peers" width={columns} note={`${up}/${peers.length} up${hidden > 0 ? `, ${layout.peerFirst + 1}–${layout.peerFirst + shown.length} shown` : ""}`} /> : null}
      <Line>
        <Text bold>{names}</Text>
      </Line>
      {state.status === null ? (
        <Line dim>{"  waiting for the first answer from the SPM…"}</Line>
      ) : peers.length === 0 ? (
        <Line dim>{"  no peers have registered yet"}</Line>
      ) : (
        shown.map((peer, index) => <PeerRow key={peer.id} peer={peer} selected={layout.peerFirst + index === state.selected} cols={cols} stale={stale} />)
      )}
    </Box>
  );
}

function Routers({ status, state, rows }: { status: VssStatus | null; state: DashboardState; rows: number }) {
  if (rows === 0) return null;
  const routers = status?.routers ?? [];
  const rate = (address: string, fallback: number) => state.routerRates[address] ?? fallback;
  const ageColour = (ms: number): Colour => (ms > 10_000 ? "red" : ms > 3_000 ? "yellow" : undefined);
  if (rows === 1) {
    return (
      <Line>
        <Text bold color="cyan">
          {"Routers "}
        </Text>
        {routers.length === 0 ? <Text dimColor>none reporting</Text> : null}
        {routers.map((router, index) => (
          <Text key={router.address}>
            {`${index > 0 ? " · " : ""}${printable(router.address)} `}
            <Text color={stateColour(router.state)} bold={router.state !== "up"}>
              {router.state}
            </Text>
            {` ${perSec(rate(router.address, router.requestsPerSec))} req/s`}
          </Text>
        ))}
      </Line>
    );
  }
  return (
    <Box flexDirection="column">
      <Rule title="Routers" width={state.size.columns} note={`${routers.length}`} />
      {routers.slice(0, rows - 1).map((router) => (
        <Line key={router.address}>
          {`  ${printable(router.address).padEnd(22)}`}
          <Text color={stateColour(router.state)} bold={router.state !== "up"}>
            {router.state.padEnd(8)}
          </Text>
          {`${perSec(rate(router.address, router.requestsPerSec)).padStart(7)} req/s   total ${count(router.requests)}   errors `}
          <Text color={router.errors > 0 ? "yellow" : undefined}>{count(router.errors)}</Text>
          {"   last hb "}
          <Text color={ageColour(router.lastHeartbeatAgeMs)}>{age(router.lastHeartbeatAgeMs)}</Text>
        </Line>
      ))}
    </Box>
  );
}

function Replication({ status, state, rows }: { status: VssStatus | null; state: DashboardState; rows: number }) {
  if (rows === 0) return null;
  const width = state.size.columns;
  if (!status) {
    return (
      <Box flexDirection="column" height={rows}>
        <Rule title="Replication" width={width} />
      </Box>
    );
  }
  const healing = status.healing;
  const progress = healProgress(status);
  const barWidth = Math.max(5, Math.min(30, width - 60));
  const { filled, empty } = bar(progress.fraction, barWidth);
  return (
    <Box flexDirection="column">
      <Rule title="Replication" width={width} note={healing.active ? "healing" : "idle"} />
      <Line>
        {"  under-replicated "}
        <Text color={status.underReplicated > 0 ? "yellow" : "green"} bold>
          {count(status.underReplicated)}
        </Text>
        {` chunks  queued ${count(healing.queued)}  in flight ${count(healing.inFlight)}  garbage ${count(status.garbage)}  failures `}
        <Text color={healing.failures > 0 ? "red" : undefined}>{count(healing.failures)}</Text>
        {healing.lastError ? <Text color="red">{`  last error: ${printable(healing.lastError)}`}</Text> : null}
      </Line>
      <Line>
        {"  heal "}
        <Text color={progress.fraction >= 1 ? "green" : "yellow"}>{filled}</Text>
        <Text color="gray">{empty}</Text>
        {` ${Math.floor(progress.fraction * 100)}%  ${count(progress.done)}/${count(progress.total)} chunks  ${bytesPerSec(healing.bytesPerSec)}  healed ${formatBytes(healing.healedBytes)}  moved ${count(healing.movedChunks)}  trimmed ${count(healing.trimmedReplicas)}`}
      </Line>
      {status.drains.slice(0, Math.max(0, rows - 3)).map((drain) => (
        <DrainLine key={drain.peerId} drain={drain} />
      ))}
    </Box>
  );
}

/** A drain under way: what is left and moved, and (yellow) the first thing that keeps chunks on the peer. */
function DrainLine({ drain }: { drain: VssStatus["drains"][number] }) {
  const first = drain.blocked[0];
  const more = drain.blocked.length > 1 ? ` (+${drain.blocked.length - 1} more: mictlanx status)` : "";
  return (
    <Line>
      {`  drain ${printable(drain.peerId)}  ${count(drain.remainingChunks)} chunks left  ${count(drain.movedChunks)} moved off`}
      {drain.remainingChunks === 0 ? <Text color="green">{"  drained"}</Text> : null}
      {first ? <Text color="yellow">{`  blocked: ${printable(first.message)}${more}`}</Text> : null}
    </Line>
  );
}

function Spark({ label, history, pick, state, unit }: { label: string; history: HistoryPoint[]; pick: (point: HistoryPoint) => number; state: DashboardState; unit: (value: number) => string }) {
  const width = Math.max(10, Math.min(60, state.size.columns - label.length - 26));
  const { line, max } = sparkline(history, pick, state.nowMs, width);
  const last = history[history.length - 1];
  return (
    <Line>
      <Text bold>{label}</Text>
      <Text color="green">{line}</Text>
      {` now ${last ? unit(pick(last)) : "–"}  max ${unit(max)}`}
    </Line>
  );
}

function Throughput({ state, rows }: { state: DashboardState; rows: number }) {
  if (rows === 0) return null;
  const ops = <Spark label={rows === 1 ? "ops/s 60s " : "  ops/s  "} history={state.history} pick={(point) => point.opsPerSec} state={state} unit={perSec} />;
  if (rows === 1) return ops;
  return (
    <Box flexDirection="column">
      <Rule title="Throughput" width={state.size.columns} note="last 60 s" />
      {ops}
      <Spark label="  bytes  " history={state.history} pick={(point) => point.bytesPerSec} state={state} unit={bytesPerSec} />
    </Box>
  );
}

function eventColour(kind: string): Colour {
  if (kind === "peer_down" || kind.includes("error") || kind.includes("corrupt")) return "red";
  if (kind === "peer_suspect" || kind.includes("drain")) return "yellow";
  if (kind === "peer_up" || kind === "peer_joined") return "green";
  return undefined;
}

function clock(ms: number): string {
  const date = new Date(ms);
  const two = (value: number) => String(value).padStart(2, "0");
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
}

/** The newest events that fit, oldest first: a log that scrolls up as events arrive. */
function Events({ status, state, rows }: { status: VssStatus | null; state: DashboardState; rows: number }) {
  if (rows === 0) return null;
  const events = status?.events ?? [];
  const shown = events.slice(-(rows - 1));
  return (
    <Box flexDirection="column">
      <Rule title="Events" width={state.size.columns} note={events.length > shown.length ? `last ${shown.length} of ${events.length}` : undefined} />
      {shown.length === 0 ? <Line dim>{"  nothing yet"}</Line> : null}
      {shown.map((event, index) => (
        <Line key={`${event.atMs}-${index}`}>
          <Text dimColor>{`  ${clock(event.atMs)} `}</Text>
          <Text color={eventColour(event.kind)}>{printable(event.message)}</Text>
        </Line>
      ))}
    </Box>
  );
}

export function DetailPane({ detail, peer, state, rows }: { detail: PeerDetail; peer: PeerStatus | undefined; state: DashboardState; rows: number }) {
  if (rows === 0) return null;
  const width = state.size.columns;
  const title = `Peer ${printable(detail.peerId)} at ${printable(detail.address)}`;
  let body: ReactNode;
  if (detail.phase === "loading") {
    body = <Line dim>{`  asking ${printable(detail.peerId)} for its health…`}</Line>;
  } else if (detail.phase === "error") {
    const seen = peer ? ` (the SPM says ${peer.state}, last heartbeat ${age(peer.lastHeartbeatAgeMs)} ago)` : "";
    body = (
      <Text wrap="wrap" color="red" bold>
        {`  peer ${printable(detail.peerId)} at ${printable(detail.address)} is unreachable: ${printable(detail.error)}${seen}`}
      </Text>
    );
  } else {
    body = <HealthBody health={detail.health} atMs={detail.atMs} rows={rows - 1} />;
  }
  return (
    <Box flexDirection="column" height={rows} overflow="hidden">
      <Rule title={title} width={width} note="Esc closes" />
      {body}
    </Box>
  );
}

function HealthBody({ health, atMs, rows }: { health: PeerHealth; atMs: number; rows: number }) {
  const errors = health.recentErrors;
  // Three summary lines, then errors (newest last) and shards share what is left.
  const left = Math.max(0, rows - 3 - 2);
  const errorLines = Math.min(errors.length === 0 ? 1 : errors.length, Math.max(1, Math.floor(left / 2)));
  const shardLines = Math.max(0, left - errorLines);
  const shards = health.shards;
  return (
    <Box flexDirection="column">
      <Line>{`  version ${health.version}  up ${duration(health.uptimeMs)}  used ${formatBytes(health.usedBytes)} of ${formatBytes(health.capacityBytes)}  live ${formatBytes(health.liveBytes)}  free ${formatBytes(health.freeBytes)}`}</Line>
      <Line>
        {`  chunks ${count(health.chunks)}  puts ${count(health.puts)}  gets ${count(health.gets)}  errors `}
        <Text color={health.errors > 0 ? "red" : undefined}>{count(health.errors)}</Text>
      </Line>
      <Line>
        <Text color={health.scrub.corruptFound > 0 ? "red" : undefined}>{`  ${scrubSummary(health.scrub, atMs)}`}</Text>
      </Line>
      <Line>
        <Text bold>{`  Recent errors (${errors.length})`}</Text>
      </Line>
      {errors.length === 0 ? <Line dim>{"    none"}</Line> : null}
      {errors.slice(-errorLines).map((error, index) => (
        <Line key={`${error.atMs}-${index}`}>
          <Text dimColor>{`    ${clock(error.atMs)} `}</Text>
          <Text color="red">{`${printable(error.op)} ${printable(error.code)}: ${printable(error.message)}`}</Text>
        </Line>
      ))}
      <Line>
        <Text bold>{`  Shards (${shards.length})   ${"ID".padStart(6)}  ${"STATE".padEnd(10)}${"BYTES".padStart(11)}${"LIVE".padStart(11)}`}</Text>
      </Line>
      {shards.slice(-Math.max(0, shardLines - 1)).map((shard) => (
        <Line key={shard.id}>
          {`              ${String(shard.id).padStart(6)}  `}
          <Text color={shard.state === "active" ? "green" : shard.state === "deleted" ? "gray" : undefined}>{shard.state.padEnd(10)}</Text>
          {`${formatBytes(shard.bytes).padStart(11)}${formatBytes(shard.liveBytes).padStart(11)}`}
        </Line>
      ))}
    </Box>
  );
}

function Footer({ state }: { state: DashboardState }) {
  const keys = state.detail ? "↑/↓ other peer  Esc close  q quit" : "↑/↓ select  Enter details  q quit";
  return (
    <Line dim>
      {`${keys}   refresh every ${intervalText(state.intervalMs)}`}
    </Line>
  );
}

/** The whole screen, from one state object. */
export function Dashboard({ state }: { state: DashboardState }) {
  const layout = computeLayout(state);
  const { columns, rows } = state.size;
  const peer = state.status?.peers.find((entry) => entry.id === state.detail?.peerId);
  return (
    <Box flexDirection="column" width={columns} height={rows} overflow="hidden">
      <Header state={state} />
      <Banner state={state} rows={layout.banner} />
      <Spms state={state} rows={layout.spms} />
      <PeersTable state={state} layout={layout} />
      {state.detail ? (
        <DetailPane detail={state.detail} peer={peer} state={state} rows={layout.detail} />
      ) : (
        <>
          <Routers status={state.status} state={state} rows={layout.routers} />
          <Replication status={state.status} state={state} rows={layout.replication} />
          <Throughput state={state} rows={layout.throughput} />
          <Events status={state.status} state={state} rows={layout.events} />
        </>
      )}
      <Box flexGrow={1} />
      <Footer state={state} />
    </Box>
  );
}
