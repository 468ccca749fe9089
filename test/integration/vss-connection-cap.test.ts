// Real processes: a peer filled to its client-connection cap with idle connections still serves
// the VSS's own router (its pool says hello first, so it is a node the peer never evicts), and
// a plain client still gets in by evicting the least recently active idle connection.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { clientFor, startTestVss } from "../support/vss.ts";
import { waitForPeersUp } from "../../src/local/vss.ts";
import { randomBytes, seededRandom } from "../support/random.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { parseAddress } from "../../src/net/address.ts";
import { peerOps } from "../../src/protocol/peer.ts";
import { limits } from "../../src/lib/limits.ts";
import { rawClient, type RawClient } from "../support/raw-client.ts";

const { random, seed } = seededRandom("vss-connection-cap");
let vss: Awaited<ReturnType<typeof startTestVss>>;
/** Connections that send nothing; each keeps what the peer says to it. */
const idle: RawClient[] = [];

beforeAll(async () => {
  // Without TLS: the idle connections are raw sockets that write frames by hand, and the cap and
  // eviction are the same code with TLS or without (a TLS connection counts from its TCP open).
  vss = await startTestVss({ label: "cap", peers: 1, routers: 1, insecure: true });
});

afterAll(async () => {
  for (const connection of idle) connection.socket.terminate();
  await vss?.cleanup();
});

test(`a peer at its client cap still serves the router, and lets a plain client in (seed ${seed})`, async () => {
  const peer = parseAddress(vss.peers[0]!.address);
  const started = performance.now();
  for (let i = 0; i < limits.serverConnectionsMax; i += 1) idle.push(await rawClient(peer));
  console.log(`${idle.length} idle connections to the peer in ${Math.round(performance.now() - started)} ms`);
  expect(idle.filter((connection) => connection.closed()).length).toBe(0);
  await waitForPeersUp(vss.spm.address, 1, 10_000); // the SPM may have seen the busy peer as suspect meanwhile

  // The router opens its connections to the peer only now: as a node's, they get in and stay.
  const client = clientFor(vss);
  try {
    const data = randomBytes(random, 3 * 1024 * 1024 + 17);
    await client.put("cap", "ball.bin", data, { rf: 1 });
    const back = await client.get("cap", "ball.bin");
    expect(Buffer.compare(Buffer.from(back), Buffer.from(data))).toBe(0);
  } finally {
    client.close();
  }
  // A plain client (no hello) gets in too: the least recently active idle connection makes room.
  const pool = new RpcPool({ role: "peer" });
  try {
    const health = await new ServiceClient(peerOps, pool, peer).call("peer.health", {});
    expect(health.id).toBe(vss.peers[0]!.id);
  } finally {
    pool.close();
  }
  const evicted = idle.filter((connection) => connection.closed());
  expect(evicted.length).toBeGreaterThanOrEqual(1);
  expect(evicted[0]!.replies[0]).toMatchObject({ id: 0, ok: false, code: "overloaded", unread: true });
  expect(evicted[0]).toBe(idle[0]!); // the oldest went first
}, 120_000);
