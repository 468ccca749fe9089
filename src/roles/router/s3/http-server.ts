// The S3 endpoint's HTTP(S) listener: node:http / node:https (as Bun provides them) carrying the
// gateway's fetch-style handler (Request in, Response out).
//
// Why not Bun.serve: it drops a handler's Content-Length whenever the body is a stream and
// frames it chunked instead (oven-sh/bun#10507, still so in the Bun this builds with). S3
// clients need the length of an object they download (s3cmd fails without it; progress and
// resumption use it), and a download is streamed chunk by chunk, never held whole. node:http
// writes the length it is given and the body raw. On TLS renewal the port is bound again.
import { once } from "node:events";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { Readable } from "node:stream";
import { limits } from "../../../lib/limits.ts";
import { S3Reply } from "./xml.ts";

/** The largest body any S3 request may carry: a whole PutObject with its aws-chunked framing. */
const requestBodyBytesMax = limits.s3PutObjectBytesMax + limits.s3ChunkedFramingBytesMax;

export interface TlsPair {
  cert: string;
  key: string;
}

export interface S3HttpServer {
  port: number;
  /** New connections use this certificate; open ones keep theirs. */
  setCertificate(pair: TlsPair): Promise<void>;
  stop(): Promise<void>;
}

export type FetchHandler = (request: Request) => Promise<Response>;

/** Listen on host:port (0: any free port); https when `tls` is given. */
export async function listenS3(host: string, port: number, tls: TlsPair | undefined, handler: FetchHandler, onError: (error: unknown) => Response): Promise<S3HttpServer> {
  const scheme = tls ? "https" : "http";
  let server = await bind(host, port, tls, (req, res) => void answer(req, res, scheme, handler, onError));
  const address = server.address();
  const bound = typeof address === "object" && address !== null ? address.port : port;
  /** Listeners replaced on renewal, whose open connections are still served until stop. */
  const retired: Server[] = [];
  return {
    port: bound,
    setCertificate: async (pair) => {
      // Bun's node:https has no setSecureContext: stop accepting on the old listener (its open
      // connections go on) and bind the port again with the new certificate.
      const old = server;
      old.close();
      retired.push(old);
      server = await bind(host, bound, pair, (req, res) => void answer(req, res, scheme, handler, onError));
    },
    stop: async () => {
      for (const each of [...retired, server]) {
        each.close();
        each.closeAllConnections();
      }
    },
  };
}

async function bind(host: string, port: number, tls: TlsPair | undefined, onRequest: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
  const server: Server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, onRequest) : createHttpServer(onRequest);
  // A connection that sends nothing for this long is closed (a slow body included).
  server.timeout = limits.s3IdleTimeoutSeconds * 1000;
  server.keepAliveTimeout = limits.s3IdleTimeoutSeconds * 1000;
  server.requestTimeout = 0; // a 5 GiB part may take long; idleness is what is bounded
  await new Promise<void>((resolve, reject) => {
    const failed = (error: Error) => reject(error);
    server.once("error", failed);
    server.listen(port, host, () => {
      server.off("error", failed);
      resolve();
    });
  });
  server.on("error", (error) => console.error(`s3 endpoint ${host}:${port}: ${error.message}`)); // a connection's own errors are not these
  return server;
}

function requestOf(req: IncomingMessage, scheme: string): Request {
  const headers = new Headers();
  for (let at = 0; at + 1 < req.rawHeaders.length; at += 2) headers.append(req.rawHeaders[at] ?? "", req.rawHeaders[at + 1] ?? "");
  const method = req.method ?? "GET";
  const withBody = method !== "GET" && method !== "HEAD";
  const init: RequestInit & { duplex?: "half" } = { method, headers };
  if (withBody) {
    init.body = Readable.toWeb(req) as ReadableStream<Uint8Array>;
    init.duplex = "half";
  }
  return new Request(`${scheme}://${req.headers.host ?? "localhost"}${req.url ?? "/"}`, init);
}

async function answer(req: IncomingMessage, res: ServerResponse, scheme: string, handler: FetchHandler, onError: (error: unknown) => Response): Promise<void> {
  let response: Response;
  try {
    const length = Number(req.headers["content-length"] ?? 0);
    if (length > requestBodyBytesMax) throw new S3Reply("EntityTooLarge", 400, `A request body is at most ${requestBodyBytesMax} bytes (a 5 GiB PutObject and its aws-chunked framing); this one says ${length}`);
    response = await handler(requestOf(req, scheme));
  } catch (error) {
    response = onError(error);
  }
  try {
    await send(res, response, req.method === "HEAD");
  } catch (error) {
    res.destroy(error instanceof Error ? error : new Error(String(error))); // the body is cut short: the client sees it
  }
}

/**
 * The response as the handler made it. A body whose length the handler did not give is read
 * whole first (the gateway's XML replies, bounded by their builders) so the reply carries its
 * length, unless the handler said `Transfer-Encoding: chunked` (Complete's keepalive stream).
 */
async function send(res: ServerResponse, response: Response, head: boolean): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  const body = response.body;
  if (body === null || head) {
    res.writeHead(response.status, headers);
    res.end();
    return;
  }
  if (headers["content-length"] === undefined && headers["transfer-encoding"] === undefined) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    res.writeHead(response.status, { ...headers, "content-length": String(bytes.byteLength) });
    res.end(bytes);
    return;
  }
  delete headers["transfer-encoding"]; // node frames it chunked itself when there is no length
  res.writeHead(response.status, headers);
  const reader = body.getReader();
  const closed = once(res, "close").then(() => "closed" as const);
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) break;
      if (!res.write(next.value) && (await Promise.race([once(res, "drain").then(() => "drained" as const), closed])) === "closed") {
        await reader.cancel();
        return;
      }
    }
    res.end();
  } finally {
    reader.releaseLock();
  }
}
