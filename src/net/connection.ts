// One client connection: requests go out with ids, replies come back in any order and are
// matched by id. In-flight requests are bounded (callers past the bound wait their turn), every
// request has a timeout, and every failure names the far end ("router 127.0.0.1:7200 …").
// A connection's first frame is a hello (every role's and client's): it states the wire versions this build speaks
// (the reply states the server's, and builds with none in common stop there, naming both), and
// a node's says who it is, so the server never evicts it for a client. A request the server never read fails with RequestNotRunError, which a pool
// sends again on a fresh connection (the server closed this one idle, or evicted it).
import type { Socket } from "bun";
import { FrameDecoder, type Frame } from "../protocol/frame.ts";
import { decodeFrame, encodeMessage, messageBodyBytes, messagePieces, peekEnvelopeId } from "../protocol/codec.ts";
import {
  describeZodError,
  helloOp,
  helloResult,
  replyEnvelope,
  requestIdMax,
  thisBuildWire,
  unstatedWire,
  wireVersionUnstated,
  wireMismatch,
  wireOverlaps,
  type KeyHello,
  type NodeIdentity,
  type ServerRole,
  type WireVersions,
} from "../protocol/envelope.ts";
import { limits } from "../lib/limits.ts";
import { Semaphore } from "../lib/semaphore.ts";
import { BadRequestError, ForbiddenError, IncompatibleError, MictlanxError, OverloadedError, TimeoutError, UnavailableError, UsageError, errorFromWire } from "../lib/errors.ts";
import { BoundedWriter } from "./writer.ts";
import { formatAddress, type Address } from "./address.ts";
import { certifiedNodeOfSocket, clientTlsOptions, keyProof, sessionBinding, type TlsSource } from "./tls.ts";

/** How a connection is secured: TLS with the VSS's CA (and a node's certificate), and a client's access key. */
export interface ClientSecurity {
  tls: TlsSource;
  /** A client's access key, proved in the hello (nodes prove who they are by certificate instead). */
  credentials?: { accessKey: string; secretKey: string };
}

export interface ConnectionOptions {
  /** Who is at the far end, for messages: "router", "peer", "spm". */
  role: string;
  frameBytesMax?: number;
  inFlightMax?: number;
  connectTimeoutMs?: number;
  /** Say this in a hello as the first frame: the connection is one of the VSS's own nodes'. */
  identity?: NodeIdentity;
  /**
   * The far end must be this kind of server: a hello asks it what it is (no round trip is
   * waited for: calls go out behind it), and if it says another kind, the connection closes
   * and every call on it fails with a WrongRoleError that says what the address is instead.
   */
  expectRole?: ServerRole;
  /** TLS (and an access key); plain TCP without it. */
  security?: ClientSecurity;
  /** @internal The wire versions this side speaks (default this build's): a test's stand-in for another build. */
  wire?: WireVersions;
}

/** The address given is another kind of server: a usage error (exit 2), naming what it is. */
export class WrongRoleError extends UsageError {
  constructor(address: string, expected: ServerRole, actual: ServerRole) {
    super(`${address} is ${roleNames[actual]}, not ${roleNames[expected]}; ${roleHints[expected]}`);
  }
}

const roleNames: Record<ServerRole, string> = { spm: "an SPM", router: "a router", peer: "a peer" };
const roleHints: Record<ServerRole, string> = {
  router: "give a router's address (--router or MICTLANX_ROUTERS; mictlanx up prints them, DIR/vss.json lists them)",
  spm: "give the SPM's address (--spm or MICTLANX_SPM; mictlanx up prints it, DIR/vss.json has it)",
  peer: "give a peer's address (mictlanx status lists them)",
};

/**
 * The request was not run: it was never written, or the server closed the connection saying it
 * read nothing after its last reply. Sending it again on another connection is safe.
 */
export class RequestNotRunError extends UnavailableError {}

export interface CallOptions {
  timeoutMs?: number;
  /**
   * Where the reply's payload should land when it comes as a split frame of exactly this many
   * bytes (e.g. the caller's destination for a chunk): received straight into it, not into a
   * fresh buffer. The reply's binary values are then views of `into`. Nothing is written into
   * it once the call has settled (a late reply after a timeout is read and dropped).
   */
  into?: Uint8Array;
}

interface Pending {
  op: string;
  into: Uint8Array | undefined;
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

interface SocketState {
  connection: RpcConnection | null;
  /** Waiting for the TLS handshake (open resolves only after it). */
  handshake: { resolve: (socket: Socket<SocketState>) => void; reject: (error: Error) => void } | null;
}

export class RpcConnection {
  private readonly pending = new Map<number, Pending>();
  private readonly slots: Semaphore;
  private readonly decoder: FrameDecoder;
  private readonly writer: BoundedWriter;
  private nextId = 1;
  private closedWith: MictlanxError | null = null;
  /** performance.now() of the last call begun or settled (see idleMs). */
  private lastUsedMs = performance.now();
  /** Why the server did not take this connection's hello, if it did not (it serves it as a client's). */
  helloRefusal: MictlanxError | undefined;
  private helloId: number | undefined;
  /** Bytes have come from the server (the first ones tell a TLS server answering plain TCP). */
  private receivedAny = false;
  /** The hello proves an access key: if it is refused, so is every call on this connection. */
  private helloProvesKey = false;
  readonly name: string;

  private constructor(
    private readonly socket: Socket<SocketState>,
    readonly address: Address,
    private readonly options: ConnectionOptions,
  ) {
    this.name = `${options.role} ${formatAddress(address)}`;
    this.slots = new Semaphore(options.inFlightMax ?? limits.inFlightPerConnectionMax);
    this.decoder = new FrameDecoder(this.frameBytesMax, { payloadTarget: (head, payloadBytes) => this.payloadTarget(head, payloadBytes) });
    this.writer = new BoundedWriter(socket, limits.writeQueueBytesMax);
  }

  static async open(address: Address, options: ConnectionOptions): Promise<RpcConnection> {
    const name = `${options.role} ${formatAddress(address)}`;
    const timeoutMs = options.connectTimeoutMs ?? limits.connectTimeoutMs;
    const holder: SocketState = { connection: null, handshake: null };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(`${name} did not accept the connection within ${timeoutMs} ms`)), timeoutMs);
    });
    const security = options.security;
    // With TLS nothing may be written before the handshake is done (Bun drops it): wait for it.
    const handshake = security ? new Promise<Socket<SocketState>>((resolve, reject) => (holder.handshake = { resolve, reject })) : null;
    handshake?.catch(() => {}); // raced below; its rejection is the one reported
    const connecting = Bun.connect<SocketState>({
      hostname: address.host,
      port: address.port,
      data: holder,
      ...(security ? { tls: clientTlsOptions(security.tls.current, address.host) } : {}),
      socket: {
        handshake: (socket, success, authorizationError) => {
          const waiting = socket.data.handshake;
          socket.data.handshake = null;
          if (success && !authorizationError) waiting?.resolve(socket);
          else waiting?.reject(untrustedServer(name, authorizationError));
        },
        data: (socket, data) => socket.data.connection?.onData(data),
        drain: (socket) => socket.data.connection?.writer.onDrain(),
        close: (socket) => {
          socket.data.handshake?.reject(new UnavailableError(`${name} closed the connection during the TLS handshake; is it a TLS server of this VSS (or one started with --insecure)?`));
          socket.data.connection?.onClose(new UnavailableError(`${name} closed the connection`));
        },
        error: (socket, error) => {
          socket.data.handshake?.reject(untrustedServer(name, error));
          socket.data.connection?.onClose(describeSocketError(name, error));
        },
        connectError: () => {},
      },
    });
    let socket: Socket<SocketState>;
    try {
      socket = await Promise.race([connecting, timeout]);
      if (handshake) socket = await Promise.race([handshake, timeout]);
    } catch (error) {
      connecting.then((late) => late.terminate(), () => {});
      throw error instanceof MictlanxError ? error : describeSocketError(name, error);
    } finally {
      clearTimeout(timer);
    }
    socket.setNoDelay(true);
    if (security && options.expectRole) checkServerCertificate(socket, address, options.expectRole);
    const connection = new RpcConnection(socket, address, options);
    holder.connection = connection;
    const credentials = security?.credentials;
    // Every role and client of this build sends one (each expects a role or is a node); a
    // connection of a test's that does neither goes without, and servers take it as version 1.
    const hello = credentials
      ? connection.hello({ accessKey: credentials.accessKey, proof: keyProof(credentials.secretKey, sessionBinding(socket)) })
      : options.identity || options.expectRole || security || options.wire
        ? connection.hello(options.identity)
        : Promise.resolve();
    // A build from before versions runs whatever follows its hello without checking versions:
    // a side that no longer speaks version 1 must hear the server's before its first call.
    if (connection.wire.min > wireVersionUnstated) await hello;
    return connection;
  }

  /**
   * The first frame, written before any call can be: the wire versions this side speaks, and who
   * this node is, or (a client's, `{}`) only the question who the server is. Not awaited (it
   * costs no round trip): the server answers it before it starts anything sent after it, so a
   * wrong role or wire version fails every call here before their own replies arrive. A refused
   * node hello leaves a connection that works as a client's, and is kept. Settles when answered.
   */
  private hello(args: NodeIdentity | KeyHello | undefined): Promise<void> {
    const timeoutMs = limits.requestTimeoutMsDefault;
    this.helloId = this.takeId();
    this.helloProvesKey = args !== undefined && "accessKey" in args;
    // The reply is handled in onReply, synchronously: a promise's callback would run only after
    // the replies read with it (an "unknown operation" for each call behind it).
    return this.sendAs(this.helloId, helloOp, args ?? {}, timeoutMs, timeoutMs, undefined, this.wire).then(
      () => {},
      (error: unknown) => {
        this.helloRefusal ??= error instanceof MictlanxError ? error : describeSocketError(this.name, error);
      },
    );
  }

  private onHello(raw: unknown): void {
    const parsed = helloResult.safeParse(raw);
    if (!parsed.success) {
      this.fail(new UnavailableError(`${this.name} answered ${helloOp} with the wrong shape: ${describeZodError(parsed.error)}`));
      return;
    }
    const { role, refused } = parsed.data;
    // A server from before versions says none: it speaks 1.
    const far = parsed.data.wire ?? unstatedWire;
    if (!wireOverlaps(far, this.wire)) {
      this.fail(new IncompatibleError(wireMismatch({ name: this.name, wire: far }, { name: `this ${this.options.identity?.role ?? "client"}`, wire: this.wire })));
      return;
    }
    if (refused !== undefined) this.helloRefusal = new OverloadedError(refused);
    // A server that says no role (one a test stands up in place of a role) is taken at its word:
    // every role of this build says its own.
    const expected = this.options.expectRole;
    if (expected !== undefined && role !== undefined && role !== expected) this.fail(new WrongRoleError(formatAddress(this.address), expected, role));
  }

  /**
   * A node's hello served as a client's is kept (it works, only unmarked), and so is a hello a
   * server too old to know it answered "unknown operation" (it speaks version 1); a refused key,
   * a refused node hello (forbidden) or no wire version in common fails the connection, so every
   * call on it says why.
   */
  private onHelloRefused(error: MictlanxError): void {
    this.helloRefusal = error;
    if (this.helloProvesKey || error.code === "forbidden" || error.code === "incompatible") this.fail(error);
  }

  /** The wire versions this side speaks. */
  get wire(): WireVersions {
    return this.options.wire ?? thisBuildWire;
  }

  /** Close this connection for good: every call waiting on it, and any made later, fails with `error`. */
  private fail(error: MictlanxError): void {
    this.onClose(error);
    this.socket.terminate();
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Calls outstanding (the hello is not one: a pool would open another connection for it). */
  get inFlight(): number {
    const hello = this.helloId !== undefined && this.pending.has(this.helloId) ? 1 : 0;
    return this.pending.size - hello + this.slots.waiting;
  }

  /** How long no call has been running or waiting here (0 while one is). */
  idleMs(nowMs: number): number {
    return this.inFlight > 0 ? 0 : nowMs - this.lastUsedMs;
  }

  private get frameBytesMax(): number {
    return this.options.frameBytesMax ?? limits.frameBytesMax;
  }

  /** Send one request and wait for its reply; error replies throw typed errors. */
  async call(op: string, args: unknown, options: CallOptions = {}): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? limits.requestTimeoutMsDefault;
    const deadline = Date.now() + timeoutMs;
    this.lastUsedMs = performance.now();
    await this.slots.acquire();
    try {
      if (this.closedWith) throw this.notSent(op, this.closedWith);
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0) throw new TimeoutError(`${this.name} did not answer ${op} within ${timeoutMs} ms`);
      await this.writer.ready().catch((error: unknown) => {
        throw this.notSent(op, error);
      });
      return await this.send(op, args, remainingMs, timeoutMs, options.into);
    } finally {
      this.slots.release();
      this.lastUsedMs = performance.now();
    }
  }

  /** Why a call was not sent; a wrong role or wire version stays itself (sending it elsewhere is no cure). */
  private notSent(op: string, cause: unknown): MictlanxError {
    if (cause instanceof WrongRoleError || (cause instanceof MictlanxError && cause.code === "incompatible")) return cause;
    const why = cause instanceof Error ? cause.message : String(cause);
    return new RequestNotRunError(`${op} was not sent: ${why}`, { cause });
  }

  close(): void {
    this.writer.flushNow();
    this.onClose(new UnavailableError(`connection to ${this.name} was closed by this process`));
    this.socket.end();
  }

  private send(op: string, args: unknown, remainingMs: number, timeoutMs: number, into: Uint8Array | undefined): Promise<unknown> {
    return this.sendAs(this.takeId(), op, args, remainingMs, timeoutMs, into);
  }

  /** `wire` goes beside the args of a hello (see helloRequestEnvelope). */
  private sendAs(id: number, op: string, args: unknown, remainingMs: number, timeoutMs: number, into: Uint8Array | undefined, wire?: WireVersions): Promise<unknown> {
    const message = encodeMessage(wire === undefined ? { id, op, args } : { id, op, args, wire });
    const bodyBytes = messageBodyBytes(message);
    if (bodyBytes > this.frameBytesMax) {
      throw new BadRequestError(`${op} request of ${bodyBytes} bytes is over the frame limit of ${this.frameBytesMax} bytes`);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.settle(id);
        reject(new TimeoutError(`${this.name} did not answer ${op} within ${timeoutMs} ms`));
      }, remainingMs);
      this.pending.set(id, { op, into, resolve, reject, timer });
      try {
        for (const piece of messagePieces(message, this.frameBytesMax)) this.writer.send(piece);
      } catch (error) {
        this.settle(id)?.reject(this.notSent(op, this.closedWith ?? describeSocketError(this.name, error)));
      }
    });
  }

  private takeId(): number {
    // Skip ids still pending after a wrap-around (2^32 requests on one connection).
    do {
      this.nextId = this.nextId >= requestIdMax ? 1 : this.nextId + 1;
    } while (this.pending.has(this.nextId));
    return this.nextId;
  }

  private settle(id: number): Pending | undefined {
    const pending = this.pending.get(id);
    if (!pending) return undefined;
    clearTimeout(pending.timer);
    this.pending.delete(id);
    if (pending.into) this.decoder.abandonPayload(pending.into); // a reply still arriving writes nothing more there
    return pending;
  }

  /** The caller's `into` for a reply whose payload is exactly that size, while its call is pending. */
  private payloadTarget(head: Uint8Array, payloadBytes: number): Uint8Array | undefined {
    const id = peekEnvelopeId(head);
    const into = id === undefined ? undefined : this.pending.get(id)?.into;
    return into !== undefined && into.byteLength === payloadBytes ? into : undefined;
  }

  private onData(data: Uint8Array): void {
    if (!this.receivedAny && !this.options.security && looksLikeTls(data)) {
      this.fail(new ForbiddenError(`no access key: ${this.name} speaks TLS; ${noKeyAdvice}`));
      return;
    }
    this.receivedAny = true;
    let frames: Frame[];
    try {
      frames = this.decoder.push(data);
    } catch (error) {
      if (error instanceof IncompatibleError) {
        this.onClose(new IncompatibleError(`${this.name} is not a mictlanx ${this.options.role}: ${error.message}; check the address`));
      } else {
        this.onClose(new UnavailableError(`${this.name} sent a broken frame: ${(error as Error).message}`));
      }
      this.socket.terminate();
      return;
    }
    for (const frame of frames) this.onReply(frame);
  }

  private onReply(frame: Frame): void {
    const parsed = replyEnvelope.safeParse(safeDecode(frame));
    if (!parsed.success) {
      this.onClose(new UnavailableError(`${this.name} sent a malformed reply: ${describeZodError(parsed.error)}`));
      this.socket.terminate();
      return;
    }
    const reply = parsed.data;
    if (reply.id === 0 && !reply.ok) {
      // The server is closing the connection, or could not tell which request it answers (the
      // connection is suspect). `unread`: it read nothing still waiting here, so none of it ran.
      const message = `${this.name}: ${reply.message}`;
      this.onClose(reply.unread ? new RequestNotRunError(`${message} (the request was not run)`) : errorFromWire(reply.code, message));
      this.socket.terminate();
      return;
    }
    const pending = this.settle(reply.id);
    if (!pending) return; // the request timed out already; its caller has been told
    if (reply.id === this.helloId) {
      if (reply.ok) this.onHello(reply.result);
      else this.onHelloRefused(errorFromWire(reply.code, reply.message));
    }
    if (reply.ok) pending.resolve(reply.result);
    else pending.reject(errorFromWire(reply.code, reply.message));
  }

  private onClose(error: MictlanxError): void {
    if (this.closedWith) return;
    this.closedWith = error;
    this.writer.close(error);
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(error);
  }
}

const noKeyAdvice = "set MICTLANX_ACCESS_KEY, MICTLANX_SECRET_KEY and MICTLANX_CA, pass --credentials FILE, or run from the directory of `mictlanx up` (its .mictlanx/credentials.json)";

/**
 * A TLS record (an alert, 0x15, or a handshake, 0x16, of version 3.x) where a frame's length
 * prefix should be: as a frame it would declare ~350 MiB and be refused as "broken".
 */
function looksLikeTls(data: Uint8Array): boolean {
  return data.byteLength >= 2 && (data[0] === 0x15 || data[0] === 0x16) && data[1] === 0x03;
}

/** The server's certificate failed this client's checks (another CA, expired, a name that is not the host dialled). */
function untrustedServer(name: string, error: unknown): MictlanxError {
  const why = error instanceof Error ? error.message : String(error ?? "it did not verify");
  const code = (error as { code?: string } | null)?.code ?? "";
  if (/ECONNREFUSED/.test(code) || /refused/i.test(why)) return describeSocketError(name, error);
  if (/WRONG_VERSION_NUMBER|wrong version number/i.test(why)) {
    return new UnavailableError(`${name} does not speak TLS: is it started with --insecure? Then drop the access key and CA from this client (unset MICTLANX_ACCESS_KEY / MICTLANX_CREDENTIALS)`);
  }
  return new ForbiddenError(`${name}: its TLS certificate is not trusted (${why}); is --ca (MICTLANX_CA) this VSS's CA, and was its certificate issued for this host (certs issue --host)?`);
}

/** With TLS, the server's certificate says what it is: another role than expected is the same usage error as a hello's. */
function checkServerCertificate(socket: Socket<SocketState>, address: Address, expected: ServerRole): void {
  const node = certifiedNodeOfSocket(socket);
  if (node && node.role !== expected) {
    socket.terminate();
    throw new WrongRoleError(formatAddress(address), expected, node.role);
  }
}

function safeDecode(frame: Frame): unknown {
  try {
    return decodeFrame(frame);
  } catch {
    return undefined;
  }
}

/** OS socket errors in words a person can act on. */
export function describeSocketError(name: string, error: unknown): MictlanxError {
  const code = (error as { code?: string } | null)?.code ?? "";
  const text = error instanceof Error ? error.message : String(error);
  if (code === "ECONNREFUSED" || /refused/i.test(text)) {
    return new UnavailableError(`${name} refused the connection; is it running?`, { cause: error });
  }
  if (code === "ECONNRESET") return new UnavailableError(`${name} reset the connection`, { cause: error });
  if (code === "ETIMEDOUT") return new TimeoutError(`${name} did not answer in time`);
  if (code === "ENOTFOUND" || code === "EAI_NONAME") {
    return new UnavailableError(`${name}: host not found; check the address`, { cause: error });
  }
  return new UnavailableError(`${name}: ${text || code || "connection failed"}`, { cause: error });
}
