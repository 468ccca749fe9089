// Wire versions (docs/formats.md): every hello states the versions its side speaks and the
// reply states the server's; sides with none in common stop at the hello with an
// `incompatible` error naming both, never reading the other's frames. A build from before
// versions (no `wire` in its hello, or no hello at all) is version 1 and still served. Another
// program's bytes where a frame should start are refused for what they look like. Real
// RpcServers and RpcConnections on loopback; another build is stood in for by the server's and
// connection's `wire` option, and a pre-version server by a raw socket that answers as round 1 did.
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { z } from "zod";
import { RpcServer } from "../../src/net/server.ts";
import { RpcConnection } from "../../src/net/connection.ts";
import { defineOps, thisBuildWire, wireOverlaps, wireVersion, wireVersionMin, type ServerRole, type WireVersions } from "../../src/protocol/envelope.ts";
import { FrameDecoder, describeForeignStart, encodeFrame, foreignPrefixLengthMin } from "../../src/protocol/frame.ts";
import { decodeFrame, encodeBody, encodeMessage, messagePieces } from "../../src/protocol/codec.ts";
import { FrameTooLargeError, IncompatibleError } from "../../src/lib/errors.ts";
import { limits } from "../../src/lib/limits.ts";
import { rejection, thrown } from "../support/errors.ts";
import { rawClient } from "../support/raw-client.ts";

const ops = defineOps({ echo: { args: z.object({ n: z.number().int() }), result: z.object({ n: z.number() }) } });
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function serve(options: { role?: ServerRole; wire?: WireVersions } = {}): RpcServer<typeof ops> {
  const server = new RpcServer({ host: "127.0.0.1", port: 0, ops, ...options, handlers: { echo: ({ n }) => ({ n }) } });
  server.listen();
  cleanups.push(() => server.stop());
  return server;
}

/** A connection as the roles' and clients' pools open them: expecting a role, so it says hello. */
async function connect(server: { port: number }, options: { role?: ServerRole; wire?: WireVersions; identity?: { role: string; id: string } } = {}): Promise<RpcConnection> {
  const role = options.role ?? "spm";
  const connection = await RpcConnection.open({ host: "127.0.0.1", port: server.port }, { ...options, role, expectRole: role });
  cleanups.push(() => connection.close());
  return connection;
}

async function waitFor(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 300; i += 1) {
    if (check()) return;
    await Bun.sleep(10);
  }
  throw new Error(`${what} did not happen within 3 s`);
}

describe("the versions", () => {
  test("this build speaks 2 and still 1 (the builds before versions); ranges talk when they overlap", () => {
    expect(thisBuildWire).toEqual({ version: wireVersion, min: wireVersionMin });
    expect(wireOverlaps(thisBuildWire, { version: 1, min: 1 })).toBe(true);
    expect(wireOverlaps(thisBuildWire, { version: 3, min: 2 })).toBe(true);
    expect(wireOverlaps(thisBuildWire, { version: 3, min: 3 })).toBe(false);
    expect(wireOverlaps({ version: 2, min: 2 }, { version: 1, min: 1 })).toBe(false);
  });
});

describe("hello: wire versions on the wire", () => {
  test("a hello with no version (a build before versions) is served, and the reply says what this server speaks", async () => {
    const spm = serve({ role: "spm" });
    const raw = await rawClient({ host: "127.0.0.1", port: spm.port });
    cleanups.push(() => raw.socket.end());
    raw.request(1, "rpc.hello", {});
    raw.request(2, "echo", { n: 7 });
    await waitFor("two replies", () => raw.replies.length === 2);
    expect(raw.replies[0]).toEqual({ id: 1, ok: true, result: { node: false, role: "spm", wire: { version: wireVersion, min: wireVersionMin } } });
    expect(raw.replies[1]).toEqual({ id: 2, ok: true, result: { n: 7 } });
    expect(spm.stats.wireRefused).toBe(0);
  });

  test("a connection that sends no hello at all (round 1's plain clients) is version 1 and served", async () => {
    const server = serve();
    const raw = await rawClient({ host: "127.0.0.1", port: server.port });
    cleanups.push(() => raw.socket.end());
    raw.request(1, "echo", { n: 1 });
    await waitFor("the reply", () => raw.replies.length === 1);
    expect(raw.replies[0]).toEqual({ id: 1, ok: true, result: { n: 1 } });
  });

  test("a hello stating versions this server does not speak is refused with both named, and nothing behind it runs", async () => {
    const spm = serve({ role: "spm" });
    const raw = await rawClient({ host: "127.0.0.1", port: spm.port });
    const hello = encodeMessage({ id: 1, op: "rpc.hello", args: { role: "router", id: "router-9" }, wire: { version: 7, min: 5 } });
    for (const piece of [...messagePieces(hello, limits.frameBytesMax), ...messagePieces(encodeMessage({ id: 2, op: "echo", args: { n: 2 } }), limits.frameBytesMax)]) raw.socket.write(piece);
    await waitFor("the connection closed", () => raw.closed());
    expect(raw.replies).toHaveLength(1);
    expect(raw.replies[0]).toMatchObject({ id: 0, ok: false, code: "incompatible" });
    expect(raw.replies[0]!.message).toContain(`router router-9 at 127.0.0.1 speaks wire versions 5 to 7, this spm speaks wire versions ${wireVersionMin} to ${wireVersion}: run the same mictlanx version on every node`);
    expect(raw.replies[0]!.unread).toBeUndefined(); // not to be sent again elsewhere: every server of this build says the same
    expect(spm.stats.wireRefused).toBe(1);
  });

  test("a malformed version is a bad_request, not a guess", async () => {
    const server = serve();
    const raw = await rawClient({ host: "127.0.0.1", port: server.port });
    cleanups.push(() => raw.socket.end());
    for (const wire of [{ version: 0, min: 0 }, { version: 2, min: 3 }, { version: "2", min: 1 }, { version: limits.wireVersionMax + 1, min: 1 }]) {
      for (const piece of messagePieces(encodeMessage({ id: 1, op: "rpc.hello", args: {}, wire }), limits.frameBytesMax)) raw.socket.write(piece);
    }
    await waitFor("four replies", () => raw.replies.length === 4);
    for (const reply of raw.replies) expect(reply).toMatchObject({ id: 1, ok: false, code: "bad_request" });
    expect(raw.closed()).toBe(false);
  });
});

describe("hello: two builds that cannot talk", () => {
  test("this build's connection to a server that no longer speaks its versions: every call fails with incompatible, none is sent again", async () => {
    const newer = serve({ role: "peer", wire: { version: 4, min: 3 } });
    const connection = await connect(newer, { role: "peer", identity: { role: "router", id: "router-1" } });
    const errors = await Promise.all([1, 2, 3].map((n) => rejection(connection.call("echo", { n }))));
    for (const error of errors) {
      expect(error.code).toBe("incompatible");
      expect(error.message).toContain(`peer 127.0.0.1:${newer.port}: router router-1 at 127.0.0.1 speaks wire versions ${wireVersionMin} to ${wireVersion}, this peer speaks wire versions 3 to 4`);
    }
    expect(newer.stats.wireRefused).toBe(1);
    expect(newer.stats.requests).toBe(1); // the hello only: the calls behind it were dropped unread
    expect((await rejection(connection.call("echo", { n: 4 }))).code).toBe("incompatible");
  });

  test("a newer client whose versions this server does not speak is refused by this server", async () => {
    const router = serve({ role: "router" });
    const connection = await connect(router, { role: "router", wire: { version: 9, min: 9 } });
    const error = await rejection(connection.call("echo", { n: 1 }));
    expect(error.code).toBe("incompatible");
    expect(error.message).toContain(`the client at 127.0.0.1 speaks wire version 9, this router speaks wire versions ${wireVersionMin} to ${wireVersion}`);
  });

  test("ranges that overlap talk: a newer build that still speaks this one's version", async () => {
    const newer = serve({ role: "spm", wire: { version: 5, min: 2 } });
    const connection = await connect(newer);
    expect(await connection.call("echo", { n: 5 })).toEqual({ n: 5 });
    expect(newer.stats.wireRefused).toBe(0);
  });

  test("a server from before versions (no wire in its hello reply) is version 1: refused by a side that no longer speaks 1, with both named", async () => {
    const old = await preVersionServer("peer");
    const connection = await connect(old, { role: "peer", wire: { version: 2, min: 2 }, identity: { role: "router", id: "router-1" } });
    const error = await rejection(connection.call("echo", { n: 1 }));
    expect(error).toBeInstanceOf(IncompatibleError);
    expect(error.message).toBe(`peer 127.0.0.1:${old.port} speaks wire version 1, this router speaks wire version 2: run the same mictlanx version on every node (and client) of a VSS; docs/formats.md says which versions talk`);
    expect(old.echoes()).toBe(0); // refused on the hello's reply, before the echo's reply was read as anything
  });

  test("…and served by this build, which still speaks 1", async () => {
    const old = await preVersionServer("peer");
    const connection = await connect(old, { role: "peer" });
    expect(await connection.call("echo", { n: 3 })).toEqual({ n: 3 });
  });
});

describe("another program's bytes where a frame should be", () => {
  test("an HTTP request at a mictlanx port is told what it is and closed; the server goes on serving", async () => {
    const server = serve({ role: "router" });
    const raw = await rawClient({ host: "127.0.0.1", port: server.port });
    raw.socket.write("GET /bucket/key HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await waitFor("the connection closed", () => raw.closed());
    expect(raw.replies[0]).toMatchObject({ id: 0, ok: false, code: "incompatible" });
    expect(raw.replies[0]!.message).toContain('it looks like an HTTP request ("GET /bucket/key HTTP/1.1');
    expect(raw.replies[0]!.message).toContain("S3 clients the router's --s3-port");
    expect(await (await connect(server, { role: "router" })).call("echo", { n: 1 })).toEqual({ n: 1 });
  });

  test("a TLS client at a server started --insecure is told it speaks TLS", async () => {
    const server = serve();
    const raw = await rawClient({ host: "127.0.0.1", port: server.port });
    raw.socket.write(new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
    await waitFor("the connection closed", () => raw.closed());
    expect(raw.replies[0]!.message).toContain("it looks like a TLS record");
  });

  test("a mictlanx client dialling an HTTP server says it is not a mictlanx role, not 'a broken frame'", async () => {
    const http = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("hello") });
    cleanups.push(() => http.stop(true));
    const connection = await connect({ port: http.port as number }, { role: "router" });
    const error = await rejection(connection.call("echo", { n: 1 }));
    expect(error.code).toBe("incompatible");
    expect(error.message).toContain(`router 127.0.0.1:${http.port} is not a mictlanx router: the stream does not start with a mictlanx frame: it looks like an HTTP reply ("HTTP/1.1 400`);
  });

  test("the decoder: a foreign start is refused however its bytes are split; a plausible oversized length is still frame_too_large", () => {
    const http = new TextEncoder().encode("POST / HTTP/1.1\r\n");
    const whole = thrown(() => new FrameDecoder(limits.frameBytesMax).push(http));
    expect(whole).toBeInstanceOf(IncompatibleError);
    const split = new FrameDecoder(limits.frameBytesMax);
    const error = thrown(() => {
      for (let at = 0; at < http.byteLength; at += 1) split.push(http.subarray(at, at + 1));
    });
    expect(error.message).toContain("it looks like text");
    const oversized = new Uint8Array(4);
    new DataView(oversized.buffer).setUint32(0, foreignPrefixLengthMin - 1);
    expect(thrown(() => new FrameDecoder(limits.frameBytesMax).push(oversized))).toBeInstanceOf(FrameTooLargeError);
    // The same foreign bytes after a good frame are a broken stream, not a foreign program.
    const afterFrame = new FrameDecoder(limits.frameBytesMax);
    expect(afterFrame.push(encodeFrame(encodeBody({ id: 1 }), limits.frameBytesMax))).toHaveLength(1);
    expect(thrown(() => afterFrame.push(http))).toBeInstanceOf(FrameTooLargeError);
  });

  test("what a start looks like, in words", () => {
    const text = (value: string) => describeForeignStart(new TextEncoder().encode(value));
    expect(text("HTTP/1.1 200 OK")).toBe('an HTTP reply ("HTTP/1.1 200 OK")');
    expect(text("SSH-2.0-OpenSSH_9.2")).toBe('an SSH greeting ("SSH-2.0-OpenSSH_9.2")');
    expect(text("DELETE /x HTTP/1.1")).toStartWith("an HTTP request");
    expect(text("hello")).toBe('text ("hello")');
    expect(describeForeignStart(new Uint8Array([0xff, 0x00, 0x10]))).toBe("binary bytes ff0010");
  });
});

/**
 * A server as builds before versions were: it answers a hello with its role and no `wire`, and
 * echoes. Raw frames on Bun.listen, so nothing of this build's server takes part.
 */
async function preVersionServer(role: ServerRole): Promise<{ port: number; echoes(): number }> {
  let echoes = 0;
  const listener = Bun.listen<{ decoder: FrameDecoder }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open: (socket) => {
        socket.data = { decoder: new FrameDecoder(limits.frameBytesMax) };
      },
      data: (socket: Socket<{ decoder: FrameDecoder }>, data) => {
        for (const frame of socket.data.decoder.push(data)) {
          const request = decodeFrame(frame) as { id: number; op: string; args: { n?: number } };
          const result = request.op === "rpc.hello" ? { node: false, role } : { n: request.args.n };
          if (request.op !== "rpc.hello") echoes += 1;
          for (const piece of messagePieces(encodeMessage({ id: request.id, ok: true, result }), limits.frameBytesMax)) socket.write(piece);
        }
      },
    },
  });
  cleanups.push(() => listener.stop(true));
  return { port: listener.port, echoes: () => echoes };
}
