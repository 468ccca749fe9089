// TLS and who may call what, on real RpcServers on loopback with certificates of a real CA
// (src/certs): nodes are known by their certificates, clients by the access key they prove in
// their hello, and every request is checked against the op's access line.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { RpcServer } from "../../src/net/server.ts";
import { RpcPool, ServiceClient } from "../../src/net/pool.ts";
import { TlsSource } from "../../src/net/tls.ts";
import type { KeyRecord } from "../../src/net/authorize.ts";
import type { ClientSecurity } from "../../src/net/connection.ts";
import type { AccessTable } from "../../src/protocol/access.ts";
import { defineOps, type ServerRole } from "../../src/protocol/envelope.ts";
import { initCa, issueNodeCertificate, nodeFiles } from "../../src/certs/certs.ts";
import type { NodeRole } from "../../src/lib/node-identity.ts";
import { rejection, thrown } from "../support/errors.ts";
import { tempDir } from "../support/vss.ts";

const ops = defineOps({
  "thing.put": { args: z.object({ bucket: z.string() }), result: z.object({ ok: z.boolean(), who: z.string() }) },
  "node.report": { args: z.object({ id: z.string() }), result: z.object({ ok: z.boolean(), who: z.string() }) },
  "vss.admin": { args: z.object({}), result: z.object({ ok: z.boolean(), who: z.string() }) },
});
const access: AccessTable<typeof ops> = {
  "thing.put": { callers: ["key", "router"], key: { action: "write", bucket: (args) => args.bucket } },
  "node.report": { callers: ["peer"], self: (args) => args.id },
  "vss.admin": { callers: ["key"], key: "admin" },
};

const dir = tempDir("net-tls");
const otherDir = tempDir("net-tls-other");
const keys = new Map<string, KeyRecord>();
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(otherDir, { recursive: true, force: true });
});

beforeAll(async () => {
  await initCa(dir);
  await initCa(otherDir);
  for (const [role, id] of [["spm", "spm"], ["peer", "peer-1"], ["router", "router-1"]] as const) await issueNodeCertificate({ dir, role, id, hosts: ["127.0.0.1"] });
  await issueNodeCertificate({ dir: otherDir, role: "peer", id: "peer-1", hosts: ["127.0.0.1"] });
  await issueNodeCertificate({ dir, role: "spm", id: "elsewhere", hosts: ["10.9.9.9"] });
  keys.set("MXWRITER", { accessKey: "MXWRITER", secretKey: "s3cret-writer", grants: [{ bucket: "photos", allow: ["write"] }], admin: false, revoked: false });
  keys.set("MXADMIN", { accessKey: "MXADMIN", secretKey: "s3cret-admin", grants: [], admin: true, revoked: false });
  keys.set("MXREVOKED", { accessKey: "MXREVOKED", secretKey: "s3cret-old", grants: [{ bucket: "*", allow: ["write"] }], admin: true, revoked: true });
});

function nodeTls(id: string, ca = dir): TlsSource {
  const files = nodeFiles(ca, id);
  return new TlsSource({ certPath: files.certPath, keyPath: files.keyPath, caPath: join(dir, "ca.crt") });
}

function serve(id = "spm"): RpcServer<typeof ops> {
  const who = (context: { principal: { kind: string } & Record<string, unknown> }) => {
    const principal = context.principal;
    return principal.kind === "key" ? `key ${String(principal.accessKey)}` : principal.kind === "node" ? `${String(principal.role)} ${String(principal.id)}` : "anonymous";
  };
  const server = new RpcServer({
    host: "127.0.0.1",
    port: 0,
    role: "spm",
    ops,
    security: { tls: nodeTls(id), access, keys: { lookup: async (accessKey) => keys.get(accessKey) } },
    handlers: {
      "thing.put": (_args, context) => ({ ok: true, who: who(context) }),
      "node.report": (_args, context) => ({ ok: true, who: who(context) }),
      "vss.admin": (_args, context) => ({ ok: true, who: who(context) }),
    },
  });
  server.listen();
  cleanups.push(() => server.stop());
  return server;
}

function client(server: RpcServer<typeof ops>, security: ClientSecurity | undefined, options: { identity?: { role: NodeRole; id: string }; expectRole?: ServerRole } = {}) {
  const pool = new RpcPool({ role: "spm", connectAttempts: 1, ...(security ? { security } : {}), ...options });
  cleanups.push(() => pool.close());
  return new ServiceClient(ops, pool, { host: "127.0.0.1", port: server.port });
}

const caOnly = () => new TlsSource({ caPath: join(dir, "ca.crt") });
const withKey = (accessKey: string, secretKey: string): ClientSecurity => ({ tls: caOnly(), credentials: { accessKey, secretKey } });

describe("nodes, by certificate", () => {
  test("a node calls what its role may, as the node its certificate names; other ops are forbidden and counted", async () => {
    const server = serve();
    const peer = client(server, { tls: nodeTls("peer-1") }, { identity: { role: "peer", id: "peer-1" } });
    expect(await peer.call("node.report", { id: "peer-1" })).toEqual({ ok: true, who: "peer peer-1" });
    const other = await rejection(peer.call("thing.put", { bucket: "photos" }));
    expect(other.code).toBe("forbidden");
    expect(other.message).toContain("peer peer-1 may not call thing.put");
    expect(server.stats.requestsForbidden).toBe(1);
  });

  test("a node cannot speak for another (a forged heartbeat), nor say hello as one it is not", async () => {
    const server = serve();
    const peer = client(server, { tls: nodeTls("peer-1") });
    const forged = await rejection(peer.call("node.report", { id: "peer-2" }));
    expect(forged.code).toBe("forbidden");
    expect(forged.message).toContain("may not speak for peer-2");
    const liar = client(server, { tls: nodeTls("peer-1") }, { identity: { role: "peer", id: "peer-2" } });
    const refused = await rejection(liar.call("node.report", { id: "peer-2" }));
    expect(refused.code).toBe("forbidden");
    expect(refused.message).toContain("whose certificate names peer peer-1");
    expect(server.stats.hellosRefused).toBe(1);
  });

  test("a certificate of another CA is refused at connect and counted; a client without a certificate cannot claim a node's hello", async () => {
    const server = serve();
    const stranger = client(server, { tls: new TlsSource({ ...nodeFiles(otherDir, "peer-1"), caPath: join(dir, "ca.crt") }) });
    const refused = await rejection(stranger.call("node.report", { id: "peer-1" }));
    expect(refused.code).toBe("forbidden");
    expect(refused.message).toContain("certificate refused");
    expect(server.stats.certificatesRefused).toBe(1);
    const claimer = client(server, { tls: caOnly() }, { identity: { role: "peer", id: "peer-1" } });
    expect((await rejection(claimer.call("node.report", { id: "peer-1" }))).message).toContain("without that node's certificate");
  });
});

describe("clients, by access key", () => {
  test("a key proves itself once per connection; its grants decide each request", async () => {
    const server = serve();
    const writer = client(server, withKey("MXWRITER", "s3cret-writer"));
    expect(await writer.call("thing.put", { bucket: "photos" })).toEqual({ ok: true, who: "key MXWRITER" });
    expect((await rejection(writer.call("thing.put", { bucket: "logs" }))).message).toContain("key MXWRITER may not write to bucket logs");
    expect((await rejection(writer.call("vss.admin", {}))).message).toContain("not an admin key");
    expect((await rejection(writer.call("node.report", { id: "x" }))).message).toContain("for the VSS's own nodes");
    const admin = client(server, withKey("MXADMIN", "s3cret-admin"));
    expect(await admin.call("vss.admin", {})).toEqual({ ok: true, who: "key MXADMIN" });
  });

  test("a wrong secret, an unknown key and a revoked key are refused on connect with what to do", async () => {
    const server = serve();
    const wrong = await rejection(client(server, withKey("MXWRITER", "guess")).call("thing.put", { bucket: "photos" }));
    expect(wrong.code).toBe("forbidden");
    expect(wrong.message).toContain("not known to this VSS, or its secret is wrong");
    const unknown = await rejection(client(server, withKey("MXNOBODY", "guess")).call("thing.put", { bucket: "photos" }));
    expect(unknown.message).toBe(wrong.message.replace("MXWRITER", "MXNOBODY")); // which ids exist is not told
    expect((await rejection(client(server, withKey("MXREVOKED", "s3cret-old")).call("thing.put", { bucket: "photos" }))).message).toContain("was revoked");
    expect(server.stats.hellosRefused).toBe(3);
  });

  test("a revocation takes effect on a connection already open, at its next request", async () => {
    const server = serve();
    keys.set("MXSOON", { accessKey: "MXSOON", secretKey: "soon", grants: [{ bucket: "*", allow: ["write"] }], admin: false, revoked: false });
    const soon = client(server, withKey("MXSOON", "soon"));
    expect((await soon.call("thing.put", { bucket: "any" })).ok).toBe(true);
    keys.set("MXSOON", { ...keys.get("MXSOON")!, revoked: true });
    expect((await rejection(soon.call("thing.put", { bucket: "any" }))).message).toContain("was revoked");
  });

  test("without a key: no access key, and what to set", async () => {
    const server = serve();
    const anonymous = await rejection(client(server, { tls: caOnly() }).call("thing.put", { bucket: "photos" }));
    expect(anonymous.code).toBe("forbidden");
    expect(anonymous.message).toContain("no access key: set MICTLANX_ACCESS_KEY");
  });
});

describe("the server, as the client checks it", () => {
  test("a server whose certificate is of another CA, or not for the host dialled, is not trusted", async () => {
    const server = serve();
    const otherCa = await rejection(client(server, { tls: new TlsSource({ caPath: join(otherDir, "ca.crt") }), credentials: { accessKey: "MXADMIN", secretKey: "s3cret-admin" } }).call("vss.admin", {}));
    expect(otherCa.code).toBe("forbidden");
    expect(otherCa.message).toContain("its TLS certificate is not trusted");
    const misnamed = serve("elsewhere"); // issued for 10.9.9.9, dialled at 127.0.0.1
    expect((await rejection(client(misnamed, withKey("MXADMIN", "s3cret-admin")).call("vss.admin", {}))).message).toContain("not trusted");
  });

  test("a server whose certificate names another role is a usage error naming what it is", async () => {
    const server = serve();
    const error = await rejection(client(server, withKey("MXADMIN", "s3cret-admin"), { expectRole: "router" }).call("vss.admin", {}));
    expect(error.code).toBe("usage");
    expect(error.message).toContain("is an SPM, not a router");
  });

  test("a plaintext client is told it has no access key, not that a frame was broken", async () => {
    const server = serve();
    const plain = await rejection(client(server, undefined).call("vss.admin", {}));
    expect(plain.code).toBe("forbidden");
    expect(plain.message).toContain("no access key: spm 127.0.0.1");
    expect(plain.message).toContain("speaks TLS");
  });
});

describe("a certificate read again (SIGHUP)", () => {
  test("must name the same node: another node's files are refused and the old certificate stays in use", async () => {
    const live = join(dir, "live");
    mkdirSync(live, { recursive: true });
    const put = (id: string) => {
      copyFileSync(nodeFiles(dir, id).certPath, join(live, "node.crt"));
      copyFileSync(nodeFiles(dir, id).keyPath, join(live, "node.key"));
    };
    put("peer-1");
    const tls = new TlsSource({ certPath: join(live, "node.crt"), keyPath: join(live, "node.key"), caPath: join(dir, "ca.crt") });
    put("router-1");
    const error = thrown(() => tls.reload());
    expect(error.code).toBe("usage");
    expect(error.message).toContain("is a router's certificate (router-1), not a peer's");
    expect(tls.current.own?.node).toEqual({ role: "peer", id: "peer-1" });
    await issueNodeCertificate({ dir, role: "peer", id: "peer-1", hosts: ["127.0.0.1"] }); // a renewal
    put("peer-1");
    tls.reload();
    expect(tls.current.cert).toBe(readFileSync(nodeFiles(dir, "peer-1").certPath, "utf8"));
  });
});
