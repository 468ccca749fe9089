// The live dashboard: the state lives in one reducer (model.ts), the poll loops feed it, keys
// move the selection, and <Dashboard> draws the screen from it. Loaded only by `mictlanx tui`.
import { useCallback, useEffect, useReducer } from "react";
import { render, useApp, useInput, useWindowSize, type RenderOptions } from "ink";
import { Dashboard } from "./components.tsx";
import { keyActions } from "./keys.ts";
import { initialState, next, type Action, type DashboardState } from "./model.ts";
import { errorMessage, every, pollStatus, rpcSource, type StatusSource } from "./poller.ts";
import type { ClientSecurity } from "../net/connection.ts";

export interface AppProps {
  source: StatusSource;
  spm: string;
  intervalMs: number;
}

function reducer(state: DashboardState, [action, nowMs]: readonly [Action, number]): DashboardState {
  return next(state, action, nowMs);
}

export function App({ source, spm, intervalMs }: AppProps) {
  const { exit } = useApp();
  const size = useWindowSize();
  const [state, dispatch] = useReducer(reducer, undefined, () => initialState({ spm, intervalMs, size, nowMs: Date.now() }));
  const send = useCallback((action: Action) => dispatch([action, Date.now()]), []);

  // A resize re-lays the screen out: the size is part of the state like everything else.
  useEffect(() => {
    send({ type: "resize", size: { columns: size.columns, rows: size.rows } });
  }, [send, size.columns, size.rows]);

  useEffect(() => {
    const loop = pollStatus(source, intervalMs, send);
    return () => loop.stop();
  }, [source, intervalMs, send]);

  // While the detail pane is open, ask its peer for its health every interval.
  const detailPeer = state.detail?.peerId;
  const detailAddress = state.detail?.address;
  useEffect(() => {
    if (detailPeer === undefined || detailAddress === undefined) return;
    let stopped = false;
    const loop = every(intervalMs, async () => {
      try {
        const health = await source.peerHealth(detailPeer);
        if (!stopped) send({ type: "peerHealth", peerId: detailPeer, health });
      } catch (error) {
        if (!stopped) send({ type: "peerHealthError", peerId: detailPeer, message: errorMessage(error) });
      }
    });
    return () => {
      stopped = true;
      loop.stop();
    };
  }, [source, intervalMs, send, detailPeer, detailAddress]);

  useInput((input, key) => {
    for (const action of keyActions(input, key)) {
      if (action.type === "quit") {
        exit();
        return;
      }
      send(action);
    }
  });

  return <Dashboard state={state} />;
}

export interface RunOptions {
  /** The SPMs to ask (several sharing one catalog: the leader's status is shown, and each one's part). */
  spms: string[];
  intervalMs: number;
  /** TLS and the admin key to prove at the SPM (none: plain TCP, an --insecure VSS). */
  security?: ClientSecurity;
  /** Tests pass their own streams and source; the command uses the terminal and the SPM. */
  source?: StatusSource;
  render?: RenderOptions;
}

/** Show the dashboard until `q` or Ctrl-C (or SIGTERM/SIGHUP/SIGINT); the terminal is restored. */
export async function runTui(options: RunOptions): Promise<void> {
  const source =
    options.source ??
    rpcSource(options.spms, {
      connectTimeoutMs: 1000,
      // A hung SPM shows as unreachable within a couple of intervals, not after 30 s.
      requestTimeoutMs: Math.min(10_000, Math.max(2000, 2 * options.intervalMs)),
    }, options.security);
  const instance = render(<App source={source} spm={options.spms.join(",")} intervalMs={options.intervalMs} />, {
    alternateScreen: true,
    // Ink goes non-interactive when the environment says CI=true and then draws only the last
    // frame, at exit: a blank screen for a live dashboard. The command has already checked that
    // stdout is a terminal, so the dashboard is interactive whatever the environment says.
    interactive: true,
    exitOnCtrlC: true,
    patchConsole: true,
    ...options.render,
  });
  const stop = () => instance.unmount();
  const signals = ["SIGTERM", "SIGHUP", "SIGINT"] as const;
  for (const signal of signals) process.on(signal, stop);
  try {
    await instance.waitUntilExit();
  } finally {
    for (const signal of signals) process.off(signal, stop);
    source.close();
  }
}
