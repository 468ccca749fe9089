// The one way a role listens: Bun.listen + frames + envelopes + zod. A handler gets parsed
// arguments and returns a result; whatever it throws becomes a typed error reply with the
// request's id, and the connection keeps serving. Only a broken stream (an oversized length
// prefix) closes a connection, after an error reply saying why.
import type { Socket, TCPSocketListener } from "bun";
import { z } from "zod";
import { FrameDecoder, type Frame } from "../protocol/frame.ts";
import { decodeFrame, encodeMessage, messageBodyBytes, messagePieces } from "../protocol/codec.ts";
import { describeZodError, requestEnvelope, type OpTable, type ParsedArgsOf, type ResultOf } from "../protocol/envelope.ts";
import { limits } from "../lib/limits.ts";
import { BadRequestError, MictlanxError, OverloadedError, toMictlanxError } from "../lib/errors.ts";
import { BoundedWriter } from "./writer.ts";

export interface RequestContext {
  remote: string;
}

export type Handlers<T extends OpTable> = {
  [K in keyof T]: (args: ParsedArgsOf<T, K>, context: RequestContext) => Promise<ResultOf<T, K>> | ResultOf<T, K>;
};

export interface ServerOptions<T extends OpTable> {
  host: string;
  port: number;
  ops: T;
  handlers: Handlers<T>;
  frameBytesMax?: number;
  inFlightPerConnectionMax?: number;
  connectionsMax?: number;
  /** Called for errors a handler threw that are bugs (code internal), so they are never silent. */
  onInternalError?: (error: MictlanxError, op: string) => void;
  /** Called for every error a handler threw (internal or not), e.g. to keep a recent-errors list. */
  onHandlerError?: (error: MictlanxError, op: string) => void;
  /** Called when a request finishes: its op, "ok" or the error code, and how long it took. */
  onRequestDone?: (op: string, outcome: string, seconds: number) => void;
}

interface ConnectionState {
  decoder: FrameDecoder;
  writer: BoundedWriter;
  /** Frames decoded but not started: at most one read's worth, because reading pauses. */
  backlog: Frame[];
  inFlight: number;
  paused: boolean;
  closing: boolean;
  remote: string;
}

export interface ServerStats {
  connections: number;
  requests: number;
  errors: number;
}

export class RpcServer<T extends OpTable> {
  private listener: TCPSocketListener<ConnectionState> | null = null;
  private readonly sockets = new Set<Socket<ConnectionState>>();
  readonly stats: ServerStats = { connections: 0, requests: 0, errors: 0 };

  constructor(private readonly options: ServerOptions<T>) {}

  get port(): number {
    if (!this.listener) throw new Error("server is not listening");
    return this.listener.port;
  }

  private get frameBytesMax(): number {
    return this.options.frameBytesMax ?? limits.frameBytesMax;
  }

  listen(): void {
    const frameBytesMax = this.frameBytesMax;
    this.listener = Bun.listen<ConnectionState>({
      hostname: this.options.host,
      port: this.options.port,
      socket: {
        open: (socket) => this.onOpen(socket, frameBytesMax),
        data: (socket, data) => this.onData(socket, data),
        drain: (socket) => {
          socket.data.writer.onDrain();
          this.pump(socket);
        },
        close: (socket) => this.onClose(socket),
        error: (socket) => this.onClose(socket),
      },
    });
  }

  stop(): void {
    for (const socket of this.sockets) socket.terminate();
    this.sockets.clear();
    this.listener?.stop(true);
    this.listener = null;
  }

  private onOpen(socket: Socket<ConnectionState>, frameBytesMax: number): void {
    const connectionsMax = this.options.connectionsMax ?? limits.serverConnectionsMax;
    socket.data = {
      decoder: new FrameDecoder(frameBytesMax),
      writer: new BoundedWriter(socket, limits.writeQueueBytesMax),
      backlog: [],
      inFlight: 0,
      paused: false,
      closing: false,
      remote: `${socket.remoteAddress}`,
    };
    if (this.sockets.size >= connectionsMax) {
      this.sendError(socket, 0, new OverloadedError(`server has ${connectionsMax} connections already; try again later`));
      socket.data.closing = true;
      socket.data.writer.flushNow();
      socket.end();
      return;
    }
    this.sockets.add(socket);
    this.stats.connections = this.sockets.size;
  }

  private onClose(socket: Socket<ConnectionState>): void {
    this.sockets.delete(socket);
    this.stats.connections = this.sockets.size;
    socket.data?.writer.close(new Error("connection closed"));
  }

  private onData(socket: Socket<ConnectionState>, data: Uint8Array): void {
    const state = socket.data;
    if (state.closing) return;
    let frames: Frame[];
    try {
      frames = state.decoder.push(data);
    } catch (error) {
      // The length prefix is over the bound (or a split frame's head length does not fit it):
      // the framing is lost, so say why and close.
      this.sendError(socket, 0, toMictlanxError(error));
      state.closing = true;
      state.writer.flushNow();
      socket.end();
      return;
    }
    for (const frame of frames) state.backlog.push(frame);
    this.pump(socket);
  }

  /**
   * Start backlog frames while the connection has room, and pause reading while it has none:
   * requests past inFlightPerConnectionMax, or replies the client is slow to read, hold the
   * client back through TCP instead of growing this process's memory.
   */
  private pump(socket: Socket<ConnectionState>): void {
    const state = socket.data;
    const inFlightMax = this.options.inFlightPerConnectionMax ?? limits.inFlightPerConnectionMax;
    while (!state.closing && state.backlog.length > 0 && state.inFlight < inFlightMax && !this.writerFull(state)) {
      const frame = state.backlog.shift();
      if (frame) this.onFrame(socket, frame);
    }
    const mustPause = state.backlog.length > 0 || this.writerFull(state);
    if (mustPause && !state.paused) {
      socket.pause();
      state.paused = true;
    } else if (!mustPause && state.paused) {
      socket.resume();
      state.paused = false;
    }
  }

  private writerFull(state: ConnectionState): boolean {
    return state.writer.pendingBytes >= limits.writeQueueBytesMax;
  }

  private onFrame(socket: Socket<ConnectionState>, frame: Frame): void {
    this.stats.requests += 1;
    let decoded: unknown;
    try {
      decoded = decodeFrame(frame);
    } catch (error) {
      this.sendError(socket, 0, toMictlanxError(error));
      return;
    }
    const envelope = requestEnvelope.safeParse(decoded);
    if (!envelope.success) {
      const id = readId(decoded);
      this.sendError(socket, id, new BadRequestError(`malformed request: ${describeZodError(envelope.error)}`));
      return;
    }
    const { id, op, args } = envelope.data;
    const spec = Object.hasOwn(this.options.ops, op) ? this.options.ops[op] : undefined;
    if (!spec) {
      this.sendError(socket, id, new BadRequestError(`unknown operation "${op}"`));
      return;
    }
    const parsed = spec.args.safeParse(args);
    if (!parsed.success) {
      this.sendError(socket, id, new BadRequestError(`bad arguments for ${op}: ${describeZodError(parsed.error)}`));
      return;
    }
    socket.data.inFlight += 1;
    void this.run(socket, id, op, parsed.data);
  }

  private async run(socket: Socket<ConnectionState>, id: number, op: string, args: unknown): Promise<void> {
    const handler = this.options.handlers[op] as (args: unknown, context: RequestContext) => unknown;
    const startedMs = performance.now();
    let outcome = "ok";
    try {
      const result = await handler(args, { remote: socket.data.remote });
      this.send(socket, { id, ok: true, result });
    } catch (error) {
      const typed = toMictlanxError(error);
      outcome = typed.code;
      if (typed.code === "internal") this.options.onInternalError?.(typed, op);
      this.options.onHandlerError?.(typed, op);
      this.sendError(socket, id, typed);
    } finally {
      this.options.onRequestDone?.(op, outcome, (performance.now() - startedMs) / 1000);
      socket.data.inFlight -= 1;
      this.pump(socket);
    }
  }

  private sendError(socket: Socket<ConnectionState>, id: number, error: MictlanxError): void {
    this.stats.errors += 1;
    this.send(socket, { id, ok: false, code: error.code, message: error.message });
  }

  private send(socket: Socket<ConnectionState>, reply: { id: number; ok: boolean; [field: string]: unknown }): void {
    let message = encodeMessage(reply);
    const bodyBytes = messageBodyBytes(message);
    if (bodyBytes > this.frameBytesMax) {
      // A reply the client could not read: say so instead, under the same id.
      const text = `reply of ${bodyBytes} bytes is over the frame limit of ${this.frameBytesMax} bytes; ask for less at once`;
      message = encodeMessage({ id: reply.id, ok: false, code: "bad_request", message: text });
    }
    const writer = socket.data.writer;
    try {
      for (const piece of messagePieces(message, this.frameBytesMax)) writer.send(piece);
    } catch {
      // The connection is already closed: the client sees that as the reply's absence,
      // and its own close handler fails the request with a message naming this server.
    }
  }
}

function readId(decoded: unknown): number {
  const parsed = z.object({ id: z.number().int().min(1).max(0xffff_ffff) }).safeParse(decoded);
  return parsed.success ? parsed.data.id : 0;
}
