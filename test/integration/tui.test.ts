// The real `mictlanx tui` in a real terminal (tmux, 120×40) against a real local VSS: it shows
// three peers up, turns a peer killed with kill -9 "down" within the grace period plus 2 s (and a
// killed router "down", in red, in the routers panel), opens
// the detail pane on a live and on the dead peer, quits on `q` with exit code 0 and gives the
// terminal back (the alternate screen is gone).
import { afterAll, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, kill9, programCommand, startTestVss } from "../support/vss.ts";
import { sharedSecurity } from "../support/security.ts";

const session = `mictlanx-tui-${process.pid}-${Date.now()}`;
/** --down-after in fastSpmArgs (test/support/vss.ts). */
const graceMs = 3_000;
let vss: Awaited<ReturnType<typeof startTestVss>> | undefined;
let started = false;

afterAll(async () => {
  if (started) Bun.spawnSync(["tmux", ...tmuxServer, "kill-server"], { stdout: "ignore", stderr: "ignore" });
  await vss?.cleanup();
});

function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * A tmux server of our own (-L), with no user config (-f /dev/null) and UTF-8 forced (-u):
 * the screen must not depend on the machine's locale, ~/.tmux.conf or a server left running.
 */
const tmuxServer = ["-L", session, "-f", "/dev/null", "-u"];

function tmux(...args: string[]): string {
  const result = Bun.spawnSync(["tmux", ...tmuxServer, ...args], { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`tmux ${args.join(" ")}: ${result.stderr.toString()}`);
  return result.stdout.toString();
}

const screen = () => tmux("capture-pane", "-p", "-t", session);

/**
 * The table row of a peer: "› peer-1  127.0.0.1:…  down …". Found by the id followed by its
 * address, not by the selection marker, whose glyph depends on the terminal's character set.
 */
function rowOf(text: string, id: string): string | undefined {
  return text.split("\n").find((line) => new RegExp(`(^|\\s)${id}\\s+127\\.0\\.0\\.1:\\d+`).test(line));
}

test("tui: 3 peers up, one killed shows down within the grace period + 2 s, detail pane, q exits 0", async () => {
  vss = await startTestVss({ label: "tui", peers: 3 });
  const exitFile = join(vss.dir, "tui-exit");
  const stderrFile = join(vss.dir, "tui-stderr");
  const command = [...programCommand(), "tui", "--spm", vss.spm.address].map(shellQuote).join(" ");
  // After the dashboard quits the shell stays a while, so the restored screen can be read.
  // Ink draws on stdout; stderr goes to a file so a failure can say what the program said.
  // CI=true as CI machines set it: Ink then turns non-interactive unless told otherwise, and the
  // dashboard must still draw live (this is how the test once failed only in CI).
  // The admin key, named in the command's own environment: tmux gives its panes the environment of its server, not ours.
  const credentials = `MICTLANX_CREDENTIALS=${shellQuote(sharedSecurity.credentialsPath)}`;
  const script = `CI=true ${credentials} ${command} 2> ${shellQuote(stderrFile)}; echo EXIT:$? > ${shellQuote(exitFile)}; echo tui-has-exited; sleep 120`;
  // The command as separate words: tmux runs it directly, not through the user's default
  // shell (which on some machines is unset or /usr/sbin/nologin, and the pane dies at once).
  tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", session, "/bin/sh", "-c", script);
  started = true;
  const stderrText = () => (existsSync(stderrFile) ? readFileSync(stderrFile, "utf8") : "(no stderr file)");

  await eventually("the dashboard shows 3 peers up", 20_000, () => {
    const text = screen();
    const ups = vss!.peers.filter((peer) => /\sup\s/.test(rowOf(text, peer.id) ?? "")).length;
    return (ups === 3 && text.includes("peers 3/3 up")) || `${ups} rows up; screen:\n${text}\nstderr:\n${stderrText()}`;
  });

  // Enter on the first peer: its shards, from peer.health on the peer itself.
  tmux("send-keys", "-t", session, "Enter");
  await eventually("the detail pane shows peer-0's shards", 5_000, () => {
    const text = screen();
    return (text.includes(`Peer ${vss!.peers[0]!.id} at ${vss!.peers[0]!.address}`) && /Shards \(\d+\)/.test(text)) || text;
  });
  tmux("send-keys", "-t", session, "Escape");
  await eventually("Esc closes the pane", 5_000, () => screen().includes("Replication") || screen());

  const victim = vss.peers[1]!;
  const killedMs = Date.now();
  kill9(victim);
  await eventually(`${victim.id} shows down within ${graceMs} + 2000 ms`, graceMs + 2_000, () => {
    const row = rowOf(screen(), victim.id) ?? "";
    return /\sdown\s/.test(row) || `row: ${row}`;
  });
  console.log(`[tui] ${victim.id} showed down ${Date.now() - killedMs} ms after kill -9 (grace ${graceMs} ms)`);
  expect(screen()).toContain("peers 2/3 up");
  // In red on the real terminal (capture with -e keeps the colours).
  const coloured = tmux("capture-pane", "-e", "-p", "-t", session).split("\n").find((line) => line.includes(`${victim.id} `));
  expect(coloured).toMatch(/\u001B\[31m(\u001B\[[0-9;]*m)*down/);

  // A killed router turns down too, in red like a peer (its state comes from its heartbeats).
  const router = vss.routers[0]!;
  kill9(router);
  const routerLine = (text: string) => text.split("\n").find((line) => line.includes(router.address) && line.includes("req/s")) ?? "";
  await eventually(`router ${router.address} shows down`, graceMs + 3_000, () => /\sdown\s/.test(routerLine(screen())) || `line: ${routerLine(screen())}`);
  expect(routerLine(tmux("capture-pane", "-e", "-p", "-t", session))).toMatch(/\u001B\[31m(\u001B\[[0-9;]*m)*down/);

  // The dead peer's pane says it cannot be reached.
  tmux("send-keys", "-t", session, "Down");
  tmux("send-keys", "-t", session, "Enter");
  await eventually("the pane says the dead peer is unreachable", 5_000, () => {
    const text = screen().replace(/\s+/g, " ");
    return text.includes(`peer ${victim.id} at ${victim.address} is unreachable`) || text;
  });

  tmux("send-keys", "-t", session, "q");
  await eventually("the program exits", 5_000, () => existsSync(exitFile) || "no exit file yet");
  expect(readFileSync(exitFile, "utf8").trim()).toBe("EXIT:0");
  // Back on the normal screen: the dashboard is gone, the shell's next line is there.
  await eventually("the terminal is restored", 5_000, () => {
    const text = screen();
    return (text.includes("tui-has-exited") && !text.includes("Replication") && !text.includes("LAST HB")) || text;
  });
}, 90_000);
