// The wire end to end in one process: a real RpcServer on loopback, real sockets.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { z } from "zod";
import { RpcServer } from "../../src/net/server.ts";
import { RpcConnection } from "../../src/net/connection.ts";
import { RpcPool, ServiceClient, backoffMs } from "../../src/net/pool.ts";
import { defineOps } from "../../src/protocol/envelope.ts";
import { encodeFrame } from "../../src/protocol/frame.ts";
import { encodeBody } from "../../src/protocol/codec.ts";
import { MictlanxError } from "../../src/lib/errors.ts";
import { BoundedWriter, corkPieceBytesMax } from "../../src/net/writer.ts";
import { rejection } from "../support/errors.ts";
import { rawClient as rawSocket } from "../support/raw-client.ts";

const testOps = defineOps({
  echo: { args: z.object({ n: z.number().int(), data: z.instanceof(Uint8Array).optional() }), result: z.object({ n: z.number(), size: z.number() }) },
  sleep: { args: z.object({ ms: z.number().int().min(0).max(60_000) }), result: z.object({ slept: z.number() }) },
  fail: { args: z.object({}), result: z.object({}) },
  big: { args: z.object({ bytes: z.number().int(), ms: z.number().int().optional() }), result: z.object({ data: z.instanceof(Uint8Array) }) },
  mirror: { args: z.object({ data: z.instanceof(Uint8Array), also: z.instanceof(Uint8Array) }), result: z.object({ data: z.instanceof(Uint8Array), also: z.instanceof(Uint8Array) }) },
});

/** Bytes with a pattern, so a byte in the wrong place shows. */
function pattern(bytes: number, salt = 0): Uint8Array<ArrayBuffer> {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 1) data[i] = (i * 7 + salt) % 251;
  return data;
}

const frameBytesMax = 256 * 1024;
let server: RpcServer<typeof testOps>;
let internalErrors = 0;

beforeAll(() => {
  server = new RpcServer({
    host: "127.0.0.1",
    port: 0,
    ops: testOps,
    frameBytesMax,
    onInternalError: () => {
      internalErrors += 1;
    },
    handlers: {
      echo: ({ n, data }) => ({ n, size: data?.byteLength ?? 0 }),
      sleep: async ({ ms }) => {
        await Bun.sleep(ms);
        return { slept: ms };
      },
      fail: () => {
        throw new Error("handler exploded");
      },
      big: async ({ bytes, ms }) => {
        if (ms) await Bun.sleep(ms);
        return { data: pattern(bytes) };
      },
      mirror: ({ data, also }) => ({ data, also }), // views of the request frame go out as the reply's payload
    },
  });
  server.listen();
});
afterAll(() => server.stop());

const address = () => ({ host: "127.0.0.1", port: server.port });

/** A raw socket that collects decoded reply envelopes. */
async function rawClient() {
  const client = await rawSocket(address(), { frameBytesMax: frameBytesMax * 2 });
  const waitFor = async (predicate: () => boolean) => {
    for (let i = 0; i < 200 && !predicate(); i += 1) await Bun.sleep(10);
    expect(predicate()).toBe(true);
  };
  return { ...client, waitFor, isClosed: client.closed };
}

describe("RpcServer + RpcConnection", () => {
  test("10k pipelined requests on one connection all answer, matched by id", async () => {
    const connection = await RpcConnection.open(address(), { role: "test" });
    const calls = Array.from({ length: 10_000 }, (_, n) => connection.call("echo", { n }));
    const results = (await Promise.all(calls)) as Array<{ n: number }>;
    results.forEach((result, n) => expect(result.n).toBe(n));
    connection.close();
  });

  test("replies out of order are matched to the right request", async () => {
    const connection = await RpcConnection.open(address(), { role: "test" });
    const slow = connection.call("sleep", { ms: 200 });
    const fast = connection.call("sleep", { ms: 1 });
    const order: number[] = [];
    await Promise.all([slow.then(() => order.push(200)), fast.then(() => order.push(1))]);
    expect(order).toEqual([1, 200]);
    connection.close();
  });

  test("a stalled server makes the request time out with a message naming it", async () => {
    const connection = await RpcConnection.open(address(), { role: "peer" });
    const started = Date.now();
    const error = await rejection(connection.call("sleep", { ms: 2_000 }, { timeoutMs: 100 }));
    expect(error).toBeInstanceOf(MictlanxError);
    expect(error.code).toBe("timeout");
    expect(error.message).toContain(`peer 127.0.0.1:${server.port} did not answer sleep within 100 ms`);
    expect(Date.now() - started).toBeLessThan(1_000);
    // The connection still serves afterwards.
    expect(await connection.call("echo", { n: 5 })).toEqual({ n: 5, size: 0 });
    connection.close();
  });

  test("a handler's bug becomes a typed internal error reply; the connection keeps serving", async () => {
    const before = internalErrors;
    const connection = await RpcConnection.open(address(), { role: "test" });
    const error = await rejection(connection.call("fail", {}));
    expect(error.code).toBe("internal");
    expect(error.message).toContain("handler exploded");
    expect(internalErrors).toBe(before + 1);
    expect(await connection.call("echo", { n: 1 })).toEqual({ n: 1, size: 0 });
    connection.close();
  });

  test("wrong shape and unknown op get bad_request with the request id", async () => {
    const connection = await RpcConnection.open(address(), { role: "test" });
    const shape = await rejection(connection.call("echo", { n: "one" }));
    expect(shape.code).toBe("bad_request");
    expect(shape.message).toContain("n");
    const unknown = await rejection(connection.call("nope", {}));
    expect(unknown.code).toBe("bad_request");
    expect(unknown.message).toContain("unknown operation");
    expect(await connection.call("echo", { n: 2 })).toEqual({ n: 2, size: 0 });
    connection.close();
  });

  test("garbage bodies get an error reply and the connection keeps serving", async () => {
    const client = await rawClient();
    client.socket.write(encodeFrame(new Uint8Array([0x92, 0x01]), frameBytesMax)); // truncated msgpack
    client.socket.write(encodeFrame(encodeBody({ hello: "world" }), frameBytesMax)); // wrong envelope
    client.socket.write(encodeFrame(encodeBody({ id: 9, op: "echo", args: { n: 9 } }), frameBytesMax));
    await client.waitFor(() => client.replies.length === 3);
    expect(client.replies[0]).toMatchObject({ id: 0, ok: false, code: "bad_request" });
    expect(client.replies[1]).toMatchObject({ id: 0, ok: false, code: "bad_request" });
    expect(client.replies[2]).toMatchObject({ id: 9, ok: true, result: { n: 9, size: 0 } });
    expect(client.isClosed()).toBe(false);
    client.socket.end();
  });

  test("an oversized frame is refused with a typed error and that connection closed; others keep serving", async () => {
    const other = await RpcConnection.open(address(), { role: "test" });
    const client = await rawClient();
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, frameBytesMax + 1);
    client.socket.write(header);
    await client.waitFor(() => client.isClosed());
    expect(client.replies[0]).toMatchObject({ ok: false, code: "frame_too_large" });
    expect(await other.call("echo", { n: 3 })).toEqual({ n: 3, size: 0 });
    other.close();
  });

  test("a request over the frame limit is refused before it is sent", async () => {
    const connection = await RpcConnection.open(address(), { role: "test", frameBytesMax });
    const error = await rejection(connection.call("echo", { n: 1, data: new Uint8Array(frameBytesMax + 10) }));
    expect(error.code).toBe("bad_request");
    expect(await connection.call("echo", { n: 1, data: new Uint8Array(frameBytesMax - 100) })).toEqual({ n: 1, size: frameBytesMax - 100 });
    connection.close();
  });

  test("a reply over the frame limit becomes an error reply under the same id", async () => {
    const connection = await RpcConnection.open(address(), { role: "test", frameBytesMax });
    const error = await rejection(connection.call("big", { bytes: frameBytesMax + 10 }));
    expect(error.code).toBe("bad_request");
    expect(error.message).toContain("over the frame limit");
    connection.close();
  });

  test("a connection dropped mid-frame fails pending calls with a message naming the far end", async () => {
    // A fake server that reads one request and answers half a frame, then drops.
    const fake = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data: (socket) => {
          const frame = encodeFrame(encodeBody({ id: 2, ok: true, result: { n: 1, size: 0 } }), frameBytesMax);
          socket.write(frame.subarray(0, frame.byteLength - 3));
          setTimeout(() => socket.terminate(), 20);
        },
      },
    });
    const connection = await RpcConnection.open({ host: "127.0.0.1", port: fake.port }, { role: "router" });
    const error = await rejection(connection.call("echo", { n: 1 }));
    expect(error.code).toBe("unavailable");
    expect(error.message).toContain(`router 127.0.0.1:${fake.port}`);
    expect(connection.closed).toBe(true);
    fake.stop(true);
  });

  test("a half-frame from the client does not disturb the server", async () => {
    const client = await rawClient();
    const frame = encodeFrame(encodeBody({ id: 4, op: "echo", args: { n: 4 } }), frameBytesMax);
    client.socket.write(frame.subarray(0, 5));
    client.socket.end();
    const connection = await RpcConnection.open(address(), { role: "test" });
    expect(await connection.call("echo", { n: 6 })).toEqual({ n: 6, size: 0 });
    connection.close();
  });
});

describe("large binaries on the wire (split frames)", () => {
  test("travel both ways intact, whatever their size next to the split threshold", async () => {
    const connection = await RpcConnection.open(address(), { role: "test", frameBytesMax });
    for (const size of [0, 1, 65_535, 65_536, 65_537, 180_000]) {
      const data = pattern(size, 1);
      const also = pattern(70_000, 2);
      const reply = (await connection.call("mirror", { data, also })) as { data: Uint8Array; also: Uint8Array };
      expect(new Uint8Array(reply.data)).toEqual(data);
      expect(new Uint8Array(reply.also)).toEqual(also);
      const big = (await connection.call("big", { bytes: size })) as { data: Uint8Array };
      expect(new Uint8Array(big.data)).toEqual(pattern(size));
    }
    // Many at once, interleaved on one connection.
    const all = await Promise.all(Array.from({ length: 40 }, (_, i) => connection.call("big", { bytes: 60_000 + i * 1000 })));
    all.forEach((reply, i) => expect(new Uint8Array((reply as { data: Uint8Array }).data)).toEqual(pattern(60_000 + i * 1000)));
    connection.close();
  });

  test("`into` receives a reply's payload in place; a wrong size or a late reply leaves it alone", async () => {
    const connection = await RpcConnection.open(address(), { role: "test", frameBytesMax });
    const into = new Uint8Array(150_000);
    const reply = (await connection.call("big", { bytes: 150_000 }, { into })) as { data: Uint8Array };
    expect(reply.data.buffer).toBe(into.buffer);
    expect(into).toEqual(pattern(150_000));
    const other = new Uint8Array(150_001);
    const elsewhere = (await connection.call("big", { bytes: 150_000 }, { into: other })) as { data: Uint8Array };
    expect(elsewhere.data.buffer === other.buffer).toBe(false);
    expect(other).toEqual(new Uint8Array(150_001));
    // The call times out before the reply comes: the late reply is read and dropped, not written.
    const late = new Uint8Array(150_000);
    const error = await rejection(connection.call("big", { bytes: 150_000, ms: 150 }, { into: late, timeoutMs: 30 }));
    expect(error.code).toBe("timeout");
    await Bun.sleep(300);
    expect(late).toEqual(new Uint8Array(150_000));
    expect(await connection.call("echo", { n: 3 })).toEqual({ n: 3, size: 0 }); // and the connection is fine
    connection.close();
  });
});

describe("RpcPool", () => {
  test("a refused connection is retried with backoff, then named in the error", async () => {
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: () => {} } });
    const port = probe.port;
    probe.stop(true); // nothing listens there now
    const pool = new RpcPool({ role: "router", connectAttempts: 3, random: () => 0.5 });
    const started = Date.now();
    const error = await rejection(pool.call({ host: "127.0.0.1", port }, "echo", { n: 1 }));
    expect(error.code).toBe("unavailable");
    expect(error.message).toBe(`router 127.0.0.1:${port} refused the connection; is it running?`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(backoffMs(1, () => 0.5) + backoffMs(2, () => 0.5) - 5);
    pool.close();
  });

  test("connections are reused and results are parsed by the op's schema", async () => {
    const pool = new RpcPool({ role: "test", connectionsPerAddress: 2 });
    const client = new ServiceClient(testOps, pool, address());
    const results = await Promise.all(Array.from({ length: 500 }, (_, n) => client.call("echo", { n })));
    results.forEach((result, n) => expect(result.n).toBe(n));
    expect(server.stats.connections).toBeLessThanOrEqual(2 + 1);
    pool.close();
  });

  test("reconnects after the server drops the connection", async () => {
    const pool = new RpcPool({ role: "test", connectionsPerAddress: 1 });
    const client = new ServiceClient(testOps, pool, address());
    expect((await client.call("echo", { n: 1 })).n).toBe(1);
    server.stop();
    server.listen(); // same options; a new port
    const again = new ServiceClient(testOps, pool, address());
    expect((await again.call("echo", { n: 2 })).n).toBe(2);
    pool.close();
  });
});

describe("BoundedWriter", () => {
  test("keeps what the socket did not take and writes it on drain, in order", async () => {
    const taken: number[] = [];
    let capacity = 3;
    const sink = {
      write(data: Uint8Array) {
        const n = Math.min(capacity, data.byteLength);
        for (const byte of data.subarray(0, n)) taken.push(byte);
        capacity -= n;
        return n;
      },
    };
    const writer = new BoundedWriter(sink, 6);
    writer.send(new Uint8Array([1, 2, 3, 4, 5]));
    writer.send(new Uint8Array([6, 7, 8, 9, 10]));
    expect(taken).toEqual([]); // corked until the end of this microtask run
    await Promise.resolve();
    expect(taken).toEqual([1, 2, 3]);
    expect(writer.pendingBytes).toBe(7);
    let ready = false;
    const waiting = writer.ready().then(() => (ready = true));
    await Bun.sleep(1);
    expect(ready).toBe(false); // 7 queued ≥ the bound of 6: the writer must wait
    capacity = 100;
    writer.onDrain();
    await waiting;
    expect(taken).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(writer.pendingBytes).toBe(0);
  });

  test("sends in one turn are joined into one write; a large one goes alone", async () => {
    const writes: number[] = [];
    const writer = new BoundedWriter({ write: (data) => (writes.push(data.byteLength), data.byteLength) }, 1 << 30);
    for (let i = 0; i < 10; i += 1) writer.send(new Uint8Array(100));
    writer.send(new Uint8Array(1 << 20));
    writer.send(new Uint8Array(7));
    await Promise.resolve();
    expect(writes).toEqual([1000, 1 << 20, 7]);
    expect(writer.pendingBytes).toBe(0);
  });

  test("large pieces (a chunk's bytes) are written as they are, never copied into a join", async () => {
    const writes: Uint8Array[] = [];
    const writer = new BoundedWriter({ write: (data) => (writes.push(data), data.byteLength) }, 1 << 30);
    const payload = new Uint8Array(corkPieceBytesMax);
    writer.send(new Uint8Array(20));
    writer.send(payload);
    writer.send(new Uint8Array(30));
    writer.send(new Uint8Array(40));
    await Promise.resolve();
    expect(writes.map((w) => w.byteLength)).toEqual([20, corkPieceBytesMax, 70]);
    expect(writes[1]).toBe(payload);
  });

  test("a writer over its bound waits for drain; close rejects the waiters", async () => {
    const writer = new BoundedWriter({ write: () => 0 }, 4);
    writer.send(new Uint8Array(10));
    await Promise.resolve();
    const waiting = writer.ready();
    writer.close(new Error("gone"));
    expect(waiting).rejects.toThrow("gone");
    expect(() => writer.send(new Uint8Array(1))).toThrow("gone");
  });
});
