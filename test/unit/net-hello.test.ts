// The hello on connect says what a server is: a pool that expects a role fails every call to
// another kind of server with a WrongRoleError naming it (a usage error, exit 2 in the CLI),
// before the server's own answer to the call ("unknown operation") can arrive, and without
// sending the call again. Real RpcServers on loopback.
import { afterEach, describe, expect, test } from "bun:test";
import { z } from "zod";
import { RpcServer } from "../../src/net/server.ts";
import { WrongRoleError } from "../../src/net/connection.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { defineOps, thisBuildWire, type ServerRole } from "../../src/protocol/envelope.ts";
import { rejection } from "../support/errors.ts";
import { rawClient } from "../support/raw-client.ts";

const ops = defineOps({ echo: { args: z.object({ n: z.number().int() }), result: z.object({ n: z.number() }) } });
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function serve(role: ServerRole | undefined): RpcServer<typeof ops> {
  const server = new RpcServer({ host: "127.0.0.1", port: 0, ops, ...(role ? { role } : {}), handlers: { echo: ({ n }) => ({ n }) } });
  server.listen();
  cleanups.push(() => server.stop());
  return server;
}

function pool(expectRole: ServerRole, identity?: { role: string; id: string }): RpcPool {
  const made = new RpcPool({ role: expectRole, expectRole, connectAttempts: 1, ...(identity ? { identity } : {}) });
  cleanups.push(() => made.close());
  return made;
}

const at = (server: RpcServer<typeof ops>) => ({ host: "127.0.0.1", port: server.port });

describe("hello: the server's role", () => {
  test("the expected role serves as before; another role fails with what the address is, not the server's answer to the call", async () => {
    const spm = serve("spm");
    expect(await new ServiceClient(ops, pool("spm"), at(spm)).call("echo", { n: 1 })).toEqual({ n: 1 });
    const wrong = await rejection(new ServiceClient(ops, pool("router"), at(spm)).call("echo", { n: 2 }));
    expect(wrong).toBeInstanceOf(WrongRoleError);
    expect(wrong.code).toBe("usage");
    expect(wrong.message).toContain(`127.0.0.1:${spm.port} is an SPM, not a router; give a router's address`);
    // The call went out once behind the hello and was not sent again on fresh connections.
    expect(spm.stats.requests).toBe(2 + 2); // each pool: its hello and one echo
  });

  test("many calls in flight behind the hello all fail with the role, and later calls too", async () => {
    const peer = serve("peer");
    const client = new ServiceClient(ops, pool("spm"), at(peer));
    const errors = await Promise.all(Array.from({ length: 8 }, (_, n) => rejection(client.call("echo", { n }))));
    for (const error of errors) expect(error.message).toContain("is a peer, not an SPM");
    expect((await rejection(client.call("echo", { n: 9 }))).message).toContain("is a peer, not an SPM");
  });

  test("a node's hello is checked the same way, and its connection still counts as a node's", async () => {
    const router = serve("router");
    const nodePool = pool("router", { role: "spm", id: "test" });
    expect(await new ServiceClient(ops, nodePool, at(router)).call("echo", { n: 3 })).toEqual({ n: 3 });
    expect(router.stats.nodeConnections).toBe(1);
    const wrong = await rejection(new ServiceClient(ops, pool("peer", { role: "spm", id: "test" }), at(router)).call("echo", { n: 4 }));
    expect(wrong.message).toContain("is a router, not a peer");
  });

  test("a server that says no role (a test's stand-in for one) is taken at its word", async () => {
    const anonymous = serve(undefined);
    expect(await new ServiceClient(ops, pool("router"), at(anonymous)).call("echo", { n: 5 })).toEqual({ n: 5 });
  });

  test("on the wire: a client's hello is {} and gets the role without becoming a node's", async () => {
    const spm = serve("spm");
    const raw = await rawClient(at(spm));
    cleanups.push(() => raw.socket.end());
    raw.request(1, "rpc.hello", {});
    raw.request(2, "rpc.hello", { role: "router", id: "r-1" });
    for (let i = 0; i < 200 && raw.replies.length < 2; i += 1) await Bun.sleep(10);
    expect(raw.replies[0]).toEqual({ id: 1, ok: true, result: { node: false, role: "spm", wire: thisBuildWire } });
    expect(raw.replies[1]).toEqual({ id: 2, ok: true, result: { node: true, role: "spm", wire: thisBuildWire } });
  });
});
