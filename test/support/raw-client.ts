// A socket that writes frames by hand and decodes what comes back: for tests of what a server
// does with clients a well-behaved RpcConnection would never be (half frames, garbage, never
// reading its replies).
import type { Socket } from "bun";
import { FrameDecoder } from "../../src/protocol/frame.ts";
import { decodeFrame, encodeMessage, messagePieces } from "../../src/protocol/codec.ts";
import { limits } from "../../src/lib/limits.ts";

export interface RawClient {
  socket: Socket<undefined>;
  /** Every frame received, decoded (replies and closing notices). */
  replies: Array<Record<string, unknown>>;
  closed(): boolean;
  /** Write one request frame; the socket must take it whole. */
  request(id: number, op: string, args: unknown): void;
}

/**
 * Connect to `address`. A `paused` client reads nothing until its socket is resumed; a
 * `halfOpen` one does not close when the server half-closes (it keeps writing until it ends).
 */
export async function rawClient(address: { host: string; port: number }, options: { paused?: boolean; halfOpen?: boolean; frameBytesMax?: number } = {}): Promise<RawClient> {
  const frameBytesMax = options.frameBytesMax ?? limits.frameBytesMax;
  const replies: Array<Record<string, unknown>> = [];
  const decoder = new FrameDecoder(frameBytesMax);
  let closed = false;
  const socket = await Bun.connect({
    hostname: address.host,
    port: address.port,
    allowHalfOpen: options.halfOpen ?? false,
    socket: {
      data: (_socket, data) => {
        for (const frame of decoder.push(data)) replies.push(decodeFrame(frame) as Record<string, unknown>);
      },
      close: () => {
        closed = true;
      },
      // Without an end handler Bun closes on the server's FIN whatever allowHalfOpen says.
      ...(options.halfOpen ? { end: () => {} } : {}),
    },
  });
  if (options.paused) socket.pause();
  return {
    socket,
    replies,
    closed: () => closed,
    request: (id, op, args) => {
      for (const piece of messagePieces(encodeMessage({ id, op, args }), frameBytesMax)) {
        const written = socket.write(piece);
        if (written !== piece.byteLength) throw new Error(`the socket took ${written} of ${piece.byteLength} bytes of a request`);
      }
    },
  };
}
