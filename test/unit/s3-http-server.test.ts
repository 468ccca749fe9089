// The S3 endpoint's listener (src/roles/router/s3/http-server.ts): a streamed download keeps the
// Content-Length its handler gave (Bun.serve drops it), a reply of unknown length is sent with
// its length, and a chunked reply (Complete's keepalive) reaches the client as it is produced.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect } from "node:net";
import { listenS3, type S3HttpServer } from "../../src/roles/router/s3/http-server.ts";

let server: S3HttpServer;
let release: () => void = () => {};
const released = new Promise<void>((resolve) => (release = resolve));

beforeAll(async () => {
  server = await listenS3("127.0.0.1", 0, undefined, async (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/streamed") {
      const piece = new Uint8Array(1 << 20).fill(7);
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull: async (controller) => {
          await Bun.sleep(1);
          controller.enqueue(piece);
          sent += 1;
          if (sent === 3) controller.close();
        },
      });
      return new Response(body, { headers: { "Content-Length": String(3 << 20) } });
    }
    if (path === "/xml") return new Response("<a>é</a>", { headers: { "Content-Type": "application/xml" } });
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        controller.enqueue(encoder.encode("first "));
        void released.then(() => {
          controller.enqueue(encoder.encode("last"));
          controller.close();
        });
      },
    });
    return new Response(body, { headers: { "Transfer-Encoding": "chunked" } });
  }, () => new Response("error", { status: 500 }));
});
afterAll(async () => {
  release();
  await server?.stop();
});

/** The raw reply's head, as a client sees it on the wire. */
async function rawHead(path: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    let text = "";
    const socket = connect(server.port, "127.0.0.1", () => socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    socket.on("data", (data) => {
      text += data.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) {
        socket.destroy();
        resolve(text.slice(0, end).toLowerCase());
      }
    });
    socket.on("error", reject);
  });
}

test("a streamed body keeps the Content-Length its handler gave, and is not chunked-framed", async () => {
  const head = await rawHead("/streamed");
  expect(head).toContain("content-length: 3145728");
  expect(head).not.toContain("transfer-encoding");
  const body = new Uint8Array(await (await fetch(`http://127.0.0.1:${server.port}/streamed`)).arrayBuffer());
  expect(body.byteLength).toBe(3 << 20);
  expect(body.every((byte) => byte === 7)).toBe(true);
});

test("a reply of unknown length is sent with its length in bytes", async () => {
  expect(await rawHead("/xml")).toContain("content-length: 9");
  expect(await (await fetch(`http://127.0.0.1:${server.port}/xml`)).text()).toBe("<a>é</a>");
});

test("a chunked reply reaches the client before it ends (Complete's keepalive)", async () => {
  const response = await fetch(`http://127.0.0.1:${server.port}/keepalive`);
  const reader = response.body!.getReader();
  const first = await reader.read(); // arrives while the handler still holds the rest back
  expect(new TextDecoder().decode(first.value)).toBe("first ");
  release();
  let rest = "";
  for (let next = await reader.read(); !next.done; next = await reader.read()) rest += new TextDecoder().decode(next.value);
  expect(rest).toBe("last");
});
