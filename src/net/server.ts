// The one way a role listens: Bun.listen + frames + envelopes + zod. A handler gets parsed
// arguments and returns a result; whatever it throws becomes a typed error reply with the
// request's id, and the connection keeps serving. Only a broken stream (an oversized length
// prefix) closes a connection, after an error reply saying why.
//
// What one connection may cost is bounded (see connection-policy.ts): the reply bytes it holds
// (replyBytesInFlightMax; requests start only while their replies fit), the frame it is
// receiving (the decoder grows it as bytes arrive), and how long it may be slow or idle
// (frameStallTimeoutMs, connectionIdleTimeoutMs). Client connections are capped at
// connectionsMax; at the cap a newcomer evicts the least recently active one. Connections of
// the VSS's own nodes (a hello, or a handler's markNode) are counted apart and never evicted.
import type { Socket, TCPSocketListener } from "bun";
import { z } from "zod";
import { FrameDecoder, frameHeaderBytes, type Frame } from "../protocol/frame.ts";
import { decodeFrame, encodeMessage, messageBodyBytes, messagePieces, type EncodedMessage } from "../protocol/codec.ts";
import {
  describeZodError,
  helloArgs,
  helloOp,
  helloRequestEnvelope,
  keyHello,
  nodeIdentity,
  requestEnvelope,
  thisBuildWire,
  unstatedWire,
  wireMismatch,
  wireOverlaps,
  type HelloResult,
  type KeyHello,
  type NodeIdentity,
  type OpTable,
  type ParsedArgsOf,
  type ResultOf,
  type ServerRole,
  type WireVersions,
} from "../protocol/envelope.ts";
import type { AccessTable } from "../protocol/access.ts";
import { limits } from "../lib/limits.ts";
import type { MetricsRegistry } from "../lib/metrics.ts";
import { assert } from "../lib/assert.ts";
import { BadRequestError, ForbiddenError, IncompatibleError, MictlanxError, OverloadedError, TimeoutError, UnavailableError, toMictlanxError } from "../lib/errors.ts";
import { BoundedWriter } from "./writer.ts";
import { listenError } from "./listen-error.ts";
import { ReplyEstimates, overdue, pickEvictee, quiet, replyRoom, type ConnectionView, type Overdue } from "./connection-policy.ts";
import { certifiedNodeOfSocket, keyProof, presentedCertificate, proofsEqual, serverTlsOptions, sessionBinding, type TlsSource } from "./tls.ts";
import { authorize, type KeyVerifier, type Principal } from "./authorize.ts";

export interface RequestContext {
  remote: string;
  /** Who is calling: a node by its certificate, a client by the key it proved (anonymous without TLS). */
  principal: Principal;
  /**
   * Mark this connection as one of the VSS's own nodes (e.g. on a valid peer heartbeat): it is
   * then never evicted for a client. False when the server holds its most node connections.
   */
  markNode(): boolean;
}

export type Handlers<T extends OpTable> = {
  [K in keyof T]: (args: ParsedArgsOf<T, K>, context: RequestContext) => Promise<ResultOf<T, K>> | ResultOf<T, K>;
};

/**
 * TLS and who may call what. Without it (`--insecure`) the server is plain TCP and believes
 * what it is told, as before security existed.
 */
export interface ServerSecurity<T extends OpTable> {
  tls: TlsSource;
  /** Who may call each op (src/protocol/access.ts). */
  access: AccessTable<T>;
  /** Checks clients' access keys; a server without one takes no client (a peer). */
  keys?: KeyVerifier;
}

export interface ServerOptions<T extends OpTable> {
  host: string;
  port: number;
  security?: ServerSecurity<T>;
  /** What this server is, said in every hello reply (clients that expect a role check it). */
  role?: ServerRole;
  ops: T;
  handlers: Handlers<T>;
  frameBytesMax?: number;
  inFlightPerConnectionMax?: number;
  /** Client connections kept; past this a newcomer evicts the least recently active one. */
  connectionsMax?: number;
  /** Node connections kept (hello or markNode); past this a hello is refused. */
  nodeConnectionsMax?: number;
  replyBytesInFlightMax?: number;
  frameStallTimeoutMs?: number;
  connectionIdleTimeoutMs?: number;
  /** Called for errors a handler threw that are bugs (code internal), so they are never silent. */
  onInternalError?: (error: MictlanxError, op: string) => void;
  /** Called for every error a handler threw (internal or not), e.g. to keep a recent-errors list. */
  onHandlerError?: (error: MictlanxError, op: string) => void;
  /** Called when a request finishes: its op, "ok" or the error code, and how long it took. */
  onRequestDone?: (op: string, outcome: string, seconds: number) => void;
  /** @internal The wire versions this server speaks (default this build's): a test's stand-in for another build. */
  wire?: WireVersions;
}

interface ParsedRequest {
  id: number;
  op: string;
  args: unknown;
  /** A hello's: the wire versions its sender speaks (none stated: version 1). */
  wire?: WireVersions | undefined;
}

interface ConnectionState {
  decoder: FrameDecoder;
  writer: BoundedWriter;
  /** Frames decoded but not started: at most one read's worth, because reading pauses. */
  backlog: Frame[];
  /** The next request, parsed, waiting for room among the connection's reply bytes. */
  waiting: ParsedRequest | null;
  inFlight: number;
  /** Reply bytes expected of the requests running now (their ops' estimates). */
  reservedReplyBytes: number;
  paused: boolean;
  /** A closing notice was sent: what still arrives is dropped until the client closes. */
  closing: boolean;
  closingSinceMs: number;
  node: boolean;
  identity: NodeIdentity | undefined;
  principal: Principal;
  /** A key's hello is being checked: nothing behind it starts until it is. */
  helloPending: boolean;
  /** The wire versions the far end speaks: from its hello, or version 1 once a request comes without one. */
  wire: WireVersions | undefined;
  /** TLS: the handshake is done (nothing is read before it). */
  handshaken: boolean;
  remote: string;
  lastActiveMs: number;
  lastReadMs: number;
}

export interface ServerStats {
  /** Open connections, clients' and nodes' (not those closing). */
  connections: number;
  nodeConnections: number;
  requests: number;
  errors: number;
  /** Client connections closed to make room for a newcomer. */
  evicted: number;
  /** Connections closed by a deadline: idle, a stalled frame, replies unread. */
  closedIdle: number;
  closedStalled: number;
  /** Replies replaced by an `overloaded` error because the connection held too many reply bytes. */
  repliesWithheld: number;
  /** Hellos refused because the server held its most node connections. */
  nodesRefused: number;
  /** Connections refused at TLS: a certificate not signed by this VSS's CA, expired, or naming no node. */
  certificatesRefused: number;
  /** Hellos refused: an unknown or revoked access key, a wrong proof, a node hello that is not its certificate's. */
  hellosRefused: number;
  /** Requests refused as not allowed: the caller's role, its key's grants, or a node speaking for another. */
  requestsForbidden: number;
  /** Connections refused because the far end speaks no wire version this server does (another mictlanx version). */
  wireRefused: number;
}

/** One connection as `connectionList()` shows it. */
export interface ConnectionInfo {
  remote: string;
  node: boolean;
  identity: NodeIdentity | undefined;
  inFlight: number;
  /** Replies queued and not taken by the socket. */
  queuedReplyBytes: number;
  /** Reply bytes expected of the requests running. */
  reservedReplyBytes: number;
  /** Bytes held for a frame being received. */
  partialFrameAllocatedBytes: number;
  /** Reading is paused: the connection holds its most requests or reply bytes. */
  paused: boolean;
  idleMs: number;
}

type ServerSocket = Socket<ConnectionState>;

export class RpcServer<T extends OpTable> {
  private listener: TCPSocketListener<ConnectionState> | null = null;
  private readonly clients = new Set<ServerSocket>();
  private readonly nodes = new Set<ServerSocket>();
  private readonly closing = new Set<ServerSocket>();
  private sweepTimer: ReturnType<typeof setInterval> | null = null;
  private readonly estimates: ReplyEstimates;
  readonly stats: ServerStats = { connections: 0, nodeConnections: 0, requests: 0, errors: 0, evicted: 0, closedIdle: 0, closedStalled: 0, repliesWithheld: 0, nodesRefused: 0, certificatesRefused: 0, hellosRefused: 0, requestsForbidden: 0, wireRefused: 0 };

  constructor(private readonly options: ServerOptions<T>) {
    assert(!Object.hasOwn(options.ops, helloOp), `${helloOp} is the server's own operation`);
    assert(this.replyBytesMax >= this.frameBytesMax, "replyBytesInFlightMax must hold a reply of a whole frame");
    const declared = new Map(Object.entries(options.ops).flatMap(([op, spec]) => (spec.replyBytesMax === undefined ? [] : [[op, spec.replyBytesMax] as const])));
    this.estimates = new ReplyEstimates(frameHeaderBytes + this.frameBytesMax, declared);
  }

  get port(): number {
    if (!this.listener) throw new Error("server is not listening");
    return this.listener.port;
  }

  private get frameBytesMax(): number {
    return this.options.frameBytesMax ?? limits.frameBytesMax;
  }

  private get replyBytesMax(): number {
    return this.options.replyBytesInFlightMax ?? limits.replyBytesInFlightMax;
  }

  private get deadlines() {
    return {
      frameStallTimeoutMs: this.options.frameStallTimeoutMs ?? limits.frameStallTimeoutMs,
      connectionIdleTimeoutMs: this.options.connectionIdleTimeoutMs ?? limits.connectionIdleTimeoutMs,
    };
  }

  /** Listen on host:port; a port that is taken (and the like) is a typed error naming it (listen-error.ts). */
  listen(): void {
    try {
      this.listener = this.bind();
    } catch (error) {
      throw listenError(this.options.host, this.options.port, "--port", error);
    }
    const { frameStallTimeoutMs, connectionIdleTimeoutMs } = this.deadlines;
    const sweepMs = Math.min(frameStallTimeoutMs, connectionIdleTimeoutMs) / limits.connectionSweepsPerTimeout;
    this.sweepTimer = setInterval(() => this.sweep(performance.now()), sweepMs);
    this.sweepTimer.unref();
  }

  private bind(port = this.options.port): TCPSocketListener<ConnectionState> {
    const security = this.options.security;
    return Bun.listen<ConnectionState>({
      hostname: this.options.host,
      port,
      ...(security ? { tls: serverTlsOptions(security.tls.current) } : {}),
      socket: {
        open: (socket) => this.onOpen(socket),
        handshake: (socket) => this.onHandshake(socket),
        data: (socket, data) => this.onData(socket, data),
        drain: (socket) => {
          socket.data.lastActiveMs = performance.now();
          socket.data.writer.onDrain(); // pumps through onWritten when it writes
          this.pump(socket);
        },
        close: (socket) => this.onClose(socket),
        error: (socket) => this.onClose(socket),
      },
    });
  }

  /**
   * Take the certificate files again (SIGHUP after a renewal): the listener is bound anew on its
   * port with them, and connections already open keep theirs. Connections tried in the instant
   * between are refused, and clients' pools try again.
   */
  reloadTls(): void {
    const security = this.options.security;
    if (!security || !this.listener) return;
    security.tls.reload(); // throws, changing nothing, on a bad file
    const port = this.listener.port;
    this.listener.stop(false);
    try {
      this.listener = this.bind(port);
    } catch (error) {
      // The port was free an instant ago: one more try, then say that this node no longer listens.
      try {
        this.listener = this.bind(port);
      } catch {
        this.listener = null;
        throw listenError(this.options.host, port, "--port", error);
      }
    }
  }

  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    for (const socket of [...this.clients, ...this.nodes, ...this.closing]) socket.terminate();
    this.clients.clear();
    this.nodes.clear();
    this.closing.clear();
    this.countConnections();
    this.listener?.stop(true);
    this.listener = null;
  }

  /** Every open connection, for diagnosis and tests. */
  connectionList(): ConnectionInfo[] {
    const now = performance.now();
    return [...this.clients, ...this.nodes].map((socket) => {
      const state = socket.data;
      return {
        remote: state.remote,
        node: state.node,
        identity: state.identity,
        inFlight: state.inFlight,
        queuedReplyBytes: state.writer.pendingBytes,
        reservedReplyBytes: state.reservedReplyBytes,
        partialFrameAllocatedBytes: state.decoder.allocatedBytes,
        paused: state.paused,
        idleMs: now - state.lastActiveMs,
      };
    });
  }

  private onOpen(socket: ServerSocket): void {
    const now = performance.now();
    // Replies written on a flush lower the bytes held without a drain event: look again then.
    const onWritten = () => {
      if (socket.data.paused) this.pump(socket);
    };
    socket.data = {
      decoder: new FrameDecoder(this.frameBytesMax),
      writer: new BoundedWriter(socket, this.replyBytesMax, onWritten),
      backlog: [],
      waiting: null,
      inFlight: 0,
      reservedReplyBytes: 0,
      paused: false,
      closing: false,
      closingSinceMs: 0,
      node: false,
      identity: undefined,
      principal: { kind: "anonymous" },
      helloPending: false,
      wire: undefined,
      handshaken: this.options.security === undefined,
      remote: `${socket.remoteAddress}`,
      lastActiveMs: now,
      lastReadMs: now,
    };
    // Every connection starts as a client's; a node's says so in its first frame.
    const connectionsMax = this.options.connectionsMax ?? limits.serverConnectionsMax;
    if (this.clients.size >= connectionsMax) this.evictFor(connectionsMax, now);
    this.clients.add(socket);
    assert(this.clients.size <= connectionsMax, "client connections past their cap");
    this.countConnections();
  }

  /**
   * TLS is up: a certificate that failed verification is told why and closed (Bun lets it this
   * far so that it can be told); a verified one that names a node makes the caller that node;
   * no certificate is a client, which must prove an access key in its hello.
   */
  private onHandshake(socket: ServerSocket): void {
    const state = socket.data;
    state.handshaken = true;
    if (presentedCertificate(socket) && !socket.authorized) {
      this.stats.certificatesRefused += 1;
      const why = socket.getAuthorizationError()?.message ?? "it did not verify";
      this.closeWithNotice(socket, new ForbiddenError(`certificate refused (${why}): a node's certificate must be signed by this VSS's CA and not expired; see mictlanx certs issue`), false);
      return;
    }
    const node = certifiedNodeOfSocket(socket);
    if (node) state.principal = { kind: "node", role: node.role, id: node.id, verified: true };
    this.pump(socket);
  }

  /** Make room for a newcomer: close the least recently active client connection, never a node's. */
  private evictFor(connectionsMax: number, now: number): void {
    const views = [...this.clients].map((socket) => ({ socket, ...this.view(socket.data, now) }));
    const evictee = pickEvictee(views);
    assert(evictee !== undefined && !evictee.node, "a server at its client cap has a client connection to evict");
    this.stats.evicted += 1;
    const why = `this server keeps ${connectionsMax} client connections and this one was the least recently active; open a new one`;
    this.closeWithNotice(evictee.socket, new OverloadedError(why), quiet(evictee));
  }

  private onClose(socket: ServerSocket): void {
    this.clients.delete(socket);
    this.nodes.delete(socket);
    this.closing.delete(socket);
    this.countConnections();
    socket.data?.writer.close(new Error("connection closed"));
  }

  private countConnections(): void {
    this.stats.connections = this.clients.size + this.nodes.size;
    this.stats.nodeConnections = this.nodes.size;
  }

  private onData(socket: ServerSocket, data: Uint8Array): void {
    const state = socket.data;
    if (state.closing) return; // read and dropped: see closeLingerMs
    const now = performance.now();
    state.lastReadMs = now;
    state.lastActiveMs = now;
    let frames: Frame[];
    try {
      frames = state.decoder.push(data);
    } catch (error) {
      // The length prefix is over the bound (or a split frame's head length does not fit it), or
      // another program is talking: the framing is lost, so say why and close.
      this.closeWithNotice(socket, error instanceof IncompatibleError ? notMictlanx(error) : toMictlanxError(error), false);
      return;
    }
    for (const frame of frames) state.backlog.push(frame);
    this.pump(socket);
  }

  /**
   * Start requests while the connection has room, and pause reading while it has none:
   * requests past inFlightPerConnectionMax, or reply bytes past replyBytesInFlightMax (replies
   * the client is slow to read, or expected of the requests running), hold the client back
   * through TCP instead of growing this process's memory.
   */
  private pump(socket: ServerSocket): void {
    const state = socket.data;
    const inFlightMax = this.options.inFlightPerConnectionMax ?? limits.inFlightPerConnectionMax;
    while (!state.closing && state.handshaken && !state.helloPending && state.inFlight < inFlightMax) {
      const request = state.waiting ?? this.nextRequest(socket);
      if (request === undefined) break;
      const expectedBytes = this.estimates.of(request.op);
      if (!replyRoom(state.writer.pendingBytes + state.reservedReplyBytes, expectedBytes, this.replyBytesMax)) {
        state.waiting = request;
        break;
      }
      state.waiting = null;
      this.start(socket, request, expectedBytes);
    }
    this.setPaused(socket, !state.closing && (state.waiting !== null || state.backlog.length > 0 || state.writer.pendingBytes >= this.replyBytesMax));
  }

  private setPaused(socket: ServerSocket, pause: boolean): void {
    const state = socket.data;
    if (pause === state.paused) return;
    state.paused = pause;
    if (pause) {
      socket.pause();
    } else {
      socket.resume();
      state.lastReadMs = performance.now(); // the client's silence while paused was ours
    }
  }

  /** The next request of the backlog, parsed; frames that are not requests are answered here. */
  private nextRequest(socket: ServerSocket): ParsedRequest | undefined {
    for (let frame = socket.data.backlog.shift(); frame !== undefined; frame = socket.data.backlog.shift()) {
      this.stats.requests += 1;
      const request = this.parse(socket, frame);
      if (request === undefined) continue;
      if (!this.speaksWith(socket, request)) return undefined;
      if (request.op !== helloOp) return request;
      this.hello(socket, request);
      if (socket.data.helloPending) return undefined; // a key's proof is being checked
    }
    return undefined;
  }

  /** A frame as a request of this server's table, or undefined after an error reply saying why not. */
  private parse(socket: ServerSocket, frame: Frame): ParsedRequest | undefined {
    let decoded: unknown;
    try {
      decoded = decodeFrame(frame);
    } catch (error) {
      this.sendError(socket, 0, toMictlanxError(error));
      return undefined;
    }
    const envelope = requestEnvelope.safeParse(decoded);
    if (!envelope.success) {
      this.sendError(socket, readId(decoded), new BadRequestError(`malformed request: ${describeZodError(envelope.error)}`));
      return undefined;
    }
    const { id, op, args } = envelope.data;
    if (op === helloOp) return this.parseHello(socket, decoded);
    const spec = Object.hasOwn(this.options.ops, op) ? this.options.ops[op] : undefined;
    if (!spec) {
      this.sendError(socket, id, new BadRequestError(`unknown operation "${op}"`));
      return undefined;
    }
    const parsed = spec.args.safeParse(args);
    if (!parsed.success) {
      this.sendError(socket, id, new BadRequestError(`bad arguments for ${op}: ${describeZodError(parsed.error)}`));
      return undefined;
    }
    return { id, op, args: parsed.data };
  }

  /** A hello's envelope, with the wire versions beside its args; an error reply for a bad one. */
  private parseHello(socket: ServerSocket, decoded: unknown): ParsedRequest | undefined {
    const hello = helloRequestEnvelope.safeParse(decoded);
    if (hello.success) return hello.data;
    this.sendError(socket, readId(decoded), new BadRequestError(`malformed ${helloOp}: ${describeZodError(hello.error)}`));
    return undefined;
  }

  /**
   * The far end's wire versions are known at its hello, or at a first request without one (a
   * build before versions: 1). Ranges that do not overlap close the connection with a notice
   * naming both, before the request is run: another build's frames are never misread.
   */
  private speaksWith(socket: ServerSocket, request: ParsedRequest): boolean {
    const state = socket.data;
    if (request.op === helloOp) state.wire = request.wire ?? unstatedWire;
    else state.wire ??= unstatedWire;
    const near = this.options.wire ?? thisBuildWire;
    if (wireOverlaps(state.wire, near)) return true;
    this.stats.wireRefused += 1;
    const caller = request.op === helloOp ? nodeIdentity.safeParse(request.args) : undefined;
    const farName = caller?.success ? `${caller.data.role} ${caller.data.id} at ${state.remote}` : `the client at ${state.remote}`;
    const message = wireMismatch({ name: farName, wire: state.wire }, { name: `this ${this.options.role ?? "server"}`, wire: near });
    this.closeWithNotice(socket, new IncompatibleError(message), false);
    return false;
  }

  /**
   * A connection's first frame: a node's says who it is (its connection is marked, unless the
   * server holds its most node connections); a client's asks only who this server is. The reply
   * names this server's role either way.
   */
  private hello(socket: ServerSocket, request: ParsedRequest): void {
    const parsed = helloArgs.safeParse(request.args);
    if (!parsed.success) {
      this.sendError(socket, request.id, new BadRequestError(`bad arguments for ${helloOp}: ${describeZodError(parsed.error)}`));
      return;
    }
    // What this server is and speaks, in every hello reply.
    const server = { ...(this.options.role === undefined ? {} : { role: this.options.role }), wire: this.options.wire ?? thisBuildWire };
    const reply = (result: HelloResult) => this.write(socket, encodeMessage({ id: request.id, ok: true, result }));
    const key = keyHello.safeParse(parsed.data);
    if (key.success) return this.keyHello(socket, request.id, key.data, () => reply({ node: false, ...server }));
    const identity = nodeIdentity.safeParse(parsed.data);
    if (!identity.success) return reply({ node: false, ...server });
    const refusal = this.nodeHelloRefusal(socket.data.principal, identity.data);
    if (refusal) {
      this.stats.hellosRefused += 1;
      this.sendError(socket, request.id, refusal);
      return;
    }
    socket.data.identity = identity.data;
    if (!this.options.security) socket.data.principal = { kind: "node", role: identity.data.role, id: identity.data.id, verified: false };
    if (this.markNode(socket)) return reply({ node: true, ...server });
    const nodesMax = this.options.nodeConnectionsMax ?? limits.serverNodeConnectionsMax;
    reply({ node: false, ...server, refused: `this server keeps ${nodesMax} node connections; this one is served as a client's` });
  }

  /** With TLS a node is who its certificate says; a hello claiming otherwise is refused. */
  private nodeHelloRefusal(principal: Principal, claimed: NodeIdentity): ForbiddenError | undefined {
    if (!this.options.security) return undefined;
    if (principal.kind !== "node") {
      return new ForbiddenError(`a hello as ${claimed.role} ${claimed.id} without that node's certificate: a node connects with --tls-cert/--tls-key issued by this VSS's CA (mictlanx certs issue)`);
    }
    if (principal.role !== claimed.role || principal.id !== claimed.id) {
      return new ForbiddenError(`a hello as ${claimed.role} ${claimed.id} over a connection whose certificate names ${principal.role} ${principal.id}`);
    }
    return undefined;
  }

  /**
   * A client proves its access key: the proof is checked against the key's secret and this
   * session's keying material; nothing sent behind the hello starts until it is.
   */
  private keyHello(socket: ServerSocket, id: number, hello: KeyHello, accepted: () => void): void {
    const security = this.options.security;
    if (!security) return accepted(); // --insecure: keys are not checked (nor needed)
    const state = socket.data;
    state.helloPending = true;
    const check = async (): Promise<Principal> => {
      if (!security.keys) throw new ForbiddenError(`this ${this.options.role ?? "server"} takes no access keys: clients call routers (and the SPM)`);
      const record = await security.keys.lookup(hello.accessKey);
      const expected = record ? keyProof(record.secretKey, sessionBinding(socket)) : "";
      if (!record || !proofsEqual(expected, hello.proof)) {
        // One message for both: which access key ids exist is not told to whoever asks.
        throw new ForbiddenError(`access key ${hello.accessKey} is not known to this VSS, or its secret is wrong; check MICTLANX_ACCESS_KEY / MICTLANX_SECRET_KEY (or --credentials)`);
      }
      if (record.revoked) throw new ForbiddenError(`access key ${hello.accessKey} was revoked; ask an admin for a new one (mictlanx key create)`);
      return { kind: "key", accessKey: record.accessKey };
    };
    check().then(
      (principal) => {
        state.principal = principal;
        accepted();
      },
      (error: unknown) => {
        this.stats.hellosRefused += 1;
        this.sendError(socket, id, toMictlanxError(error));
      },
    ).finally(() => {
      state.helloPending = false;
      if (!state.closing) this.pump(socket);
    });
  }

  private markNode(socket: ServerSocket): boolean {
    const state = socket.data;
    if (state.node) return true;
    if (state.closing) return false;
    if (this.nodes.size >= (this.options.nodeConnectionsMax ?? limits.serverNodeConnectionsMax)) {
      this.stats.nodesRefused += 1;
      return false;
    }
    this.clients.delete(socket);
    this.nodes.add(socket);
    state.node = true;
    assert(this.nodes.size <= (this.options.nodeConnectionsMax ?? limits.serverNodeConnectionsMax), "node connections past their bound");
    this.countConnections();
    return true;
  }

  private start(socket: ServerSocket, request: ParsedRequest, expectedBytes: number): void {
    socket.data.inFlight += 1;
    socket.data.reservedReplyBytes += expectedBytes;
    void this.run(socket, request, expectedBytes);
  }

  private async run(socket: ServerSocket, { id, op, args }: ParsedRequest, expectedBytes: number): Promise<void> {
    const handler = this.options.handlers[op] as (args: unknown, context: RequestContext) => unknown;
    const startedMs = performance.now();
    let outcome = "ok";
    try {
      const checked = this.options.security ? this.authorized(op, args, socket.data.principal) : socket.data.principal;
      const principal = checked instanceof Promise ? await checked : checked;
      const result = await handler(args, { remote: socket.data.remote, principal, markNode: () => this.markNode(socket) });
      this.sendResult(socket, id, op, result);
    } catch (error) {
      const typed = toMictlanxError(error);
      outcome = typed.code;
      if (typed.code === "internal") this.options.onInternalError?.(typed, op);
      this.options.onHandlerError?.(typed, op);
      this.sendError(socket, id, typed);
    } finally {
      this.options.onRequestDone?.(op, outcome, (performance.now() - startedMs) / 1000);
      const state = socket.data;
      state.inFlight -= 1;
      state.reservedReplyBytes -= expectedBytes;
      state.lastActiveMs = performance.now();
      assert(state.inFlight >= 0 && state.reservedReplyBytes >= 0, "a connection's requests or reserved reply bytes went negative");
      this.pump(socket);
    }
  }

  /** The caller, checked against the op's access (src/protocol/access.ts); forbidden otherwise. */
  private authorized(op: string, args: unknown, principal: Principal): Principal | Promise<Principal> {
    const security = this.options.security;
    assert(security !== undefined, "authorization without security");
    const access = (security.access as Record<string, Parameters<typeof authorize>[1]>)[op];
    assert(access !== undefined, `${op} has no entry in its access table`);
    const counted = (error: unknown): never => {
      if (error instanceof ForbiddenError) this.stats.requestsForbidden += 1;
      throw error;
    };
    try {
      const checked = authorize(op, access, args, principal, security.keys);
      return checked instanceof Promise ? checked.catch(counted) : checked;
    } catch (error) {
      return counted(error);
    }
  }

  private sendResult(socket: ServerSocket, id: number, op: string, result: unknown): void {
    const message = encodeMessage({ id, ok: true, result });
    const bodyBytes = messageBodyBytes(message);
    if (bodyBytes > this.frameBytesMax) {
      // A reply the client could not read: say so instead, under the same id.
      const text = `reply of ${bodyBytes} bytes is over the frame limit of ${this.frameBytesMax} bytes; ask for less at once`;
      this.sendError(socket, id, new BadRequestError(text));
      return;
    }
    const replyBytes = frameHeaderBytes + bodyBytes;
    this.estimates.note(op, replyBytes);
    const queued = socket.data.writer.pendingBytes;
    if (queued > 0 && queued + replyBytes > this.replyBytesMax) {
      // Only when the op answered more than ever before: requests start only while the replies
      // expected of them fit. Holding it would break the bound; the client may ask again.
      this.stats.repliesWithheld += 1;
      const text = `reply to ${op} of ${replyBytes} bytes withheld: this connection holds ${queued} bytes of replies not read yet (at most ${this.replyBytesMax}); read replies before asking for more`;
      this.sendError(socket, id, new OverloadedError(text));
      return;
    }
    this.write(socket, message);
  }

  private sendError(socket: ServerSocket, id: number, error: MictlanxError, unread = false): void {
    this.stats.errors += 1;
    this.write(socket, encodeMessage({ id, ok: false, code: error.code, message: error.message, ...(unread ? { unread } : {}) }));
  }

  private write(socket: ServerSocket, message: EncodedMessage): void {
    if (socket.data.closing) return; // the notice went last; the client will not read more
    const writer = socket.data.writer;
    try {
      for (const piece of messagePieces(message, this.frameBytesMax)) writer.send(piece);
    } catch {
      // The connection is already closed: the client sees that as the reply's absence,
      // and its own close handler fails the request with a message naming this server.
    }
  }

  /**
   * Say why the connection closes (id 0; `unread` when the server read nothing it has not
   * answered, so the client may resend what is still waiting), then half-close it: what still
   * arrives is read and dropped until the client closes (or a sweep after closeLingerMs).
   */
  private closeWithNotice(socket: ServerSocket, error: MictlanxError, unread: boolean): void {
    const state = socket.data;
    if (state.closing) return;
    this.sendError(socket, 0, error, unread);
    state.closing = true;
    state.closingSinceMs = performance.now();
    state.backlog = [];
    state.waiting = null;
    this.clients.delete(socket);
    this.nodes.delete(socket);
    this.closing.add(socket);
    this.countConnections();
    state.writer.flushNow();
    socket.shutdown();
    if (state.paused) {
      state.paused = false;
      socket.resume();
    }
  }

  private sweep(now: number): void {
    for (const socket of this.closing) if (now - socket.data.closingSinceMs > limits.closeLingerMs) socket.terminate();
    const deadlines = this.deadlines;
    for (const socket of [...this.clients, ...this.nodes]) {
      const late = overdue(this.view(socket.data, now), now, deadlines);
      if (late) this.closeLate(socket, late);
    }
  }

  private closeLate(socket: ServerSocket, late: Overdue): void {
    const waited = Math.round(late.waitedMs);
    if (late.reason === "idle") {
      this.stats.closedIdle += 1;
      this.closeWithNotice(socket, new UnavailableError(`closing this connection: no request and no bytes for ${waited} ms; open a new one`), true);
      return;
    }
    this.stats.closedStalled += 1;
    const partial = socket.data.decoder.bufferedBytes;
    const text =
      late.reason === "frame_stalled"
        ? `closing this connection: no bytes for ${waited} ms in the middle of a frame (${partial} bytes of it past its prefix arrived)`
        : `closing this connection: its replies have not been read for ${waited} ms`;
    this.closeWithNotice(socket, new TimeoutError(text), false);
  }

  private view(state: ConnectionState, now: number): ConnectionView {
    return {
      node: state.node,
      inFlight: state.inFlight,
      backlog: state.backlog.length + (state.waiting ? 1 : 0),
      partialFrameBytes: state.decoder.bufferedBytes,
      paused: state.paused,
      queuedReplyBytes: state.writer.pendingBytes,
      reservedReplyBytes: state.reservedReplyBytes,
      lastActiveMs: state.lastActiveMs,
      lastReadMs: state.lastReadMs,
      writeBlockedMs: state.writer.blockedForMs(now),
    };
  }
}

/** What a server refused because of who asked, by reason: `mictlanx_<role>_refused_total` (docs/security.md). */
export function refusalMetrics(registry: MetricsRegistry, role: string, stats: ServerStats): void {
  registry.counterFrom(
    `mictlanx_${role}_refused_total`,
    "Refused for who asked: certificate (not of this VSS's CA, expired), hello (an unknown or revoked key, a wrong proof, a node claiming another id), forbidden (a request its caller may not make), wire (another mictlanx version: no wire version in common).",
    () => [
      [{ reason: "certificate" }, stats.certificatesRefused],
      [{ reason: "hello" }, stats.hellosRefused],
      [{ reason: "forbidden" }, stats.requestsForbidden],
      [{ reason: "wire" }, stats.wireRefused],
    ],
  );
}

/** Another program's bytes at a mictlanx port: what to do instead. */
function notMictlanx(error: IncompatibleError): IncompatibleError {
  return new IncompatibleError(`${error.message}; this port speaks mictlanx's own protocol (framed MessagePack, with TLS unless the node runs --insecure): use the mictlanx CLI or library, and S3 clients the router's --s3-port`);
}

function readId(decoded: unknown): number {
  const parsed = z.object({ id: z.number().int().min(1).max(0xffff_ffff) }).safeParse(decoded);
  return parsed.success ? parsed.data.id : 0;
}
