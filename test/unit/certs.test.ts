// The VSS's CA and node certificates (src/certs/certs.ts), read back as TLS reads them.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { certificateNotAfterMs, initCa, issueNodeCertificate, loadX509 } from "../../src/certs/certs.ts";
import { certifiedNodeOf, nodeCertificateUri } from "../../src/lib/node-identity.ts";
import { tempDir } from "../support/vss.ts";
import { rejection } from "../support/errors.ts";

const dir = tempDir("certs");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("certs", () => {
  test("init makes a CA once; its key is 0600; a second init in the same dir is refused", async () => {
    const files = await initCa(join(dir, "ca"));
    expect(statSync(files.keyPath).mode & 0o777).toBe(0o600);
    const error = await rejection(initCa(join(dir, "ca")));
    expect(error.code).toBe("usage");
    expect(error.message).toContain("already holds a CA");
  });

  test("issue names the role and id in a URI and the hosts as IP/DNS names, signed by the CA, for --days", async () => {
    const issued = await issueNodeCertificate({ dir: join(dir, "ca"), role: "peer", id: "peer-4", hosts: ["10.0.0.4", "peer-4.example"], days: 30 });
    expect(statSync(issued.keyPath).mode & 0o777).toBe(0o600);
    const pem = readFileSync(issued.certPath, "utf8");
    const x509 = await loadX509();
    const certificate = new x509.X509Certificate(pem);
    const ca = new x509.X509Certificate(readFileSync(issued.caPath, "utf8"));
    expect(await certificate.verify({ publicKey: ca.publicKey, signatureOnly: true })).toBe(true);
    const names = certificate.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON() ?? [];
    expect(names).toEqual(expect.arrayContaining([{ type: "url", value: "urn:mictlanx:peer:peer-4" }, { type: "ip", value: "10.0.0.4" }, { type: "dns", value: "peer-4.example" }]));
    const days = (issued.notAfterMs - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);
    expect(await certificateNotAfterMs(pem)).toBe(Math.floor(issued.notAfterMs / 1000) * 1000);
  });

  test("bad roles, ids, hosts and days are usage errors naming what is allowed", async () => {
    const ca = join(dir, "ca");
    expect((await rejection(issueNodeCertificate({ dir: ca, role: "client" as "peer", id: "x", hosts: ["1.2.3.4"] }))).message).toContain("spm, router, peer");
    expect((await rejection(issueNodeCertificate({ dir: ca, role: "peer", id: "a:b", hosts: ["1.2.3.4"] }))).code).toBe("usage");
    expect((await rejection(issueNodeCertificate({ dir: ca, role: "peer", id: "p", hosts: ["not a host"] }))).message).toContain("neither an IP address nor a DNS name");
    expect((await rejection(issueNodeCertificate({ dir: ca, role: "peer", id: "p", hosts: ["1.2.3.4"], days: 0 }))).message).toContain("--days");
    expect((await rejection(issueNodeCertificate({ dir: join(dir, "none"), role: "peer", id: "p", hosts: ["1.2.3.4"] }))).message).toContain("certs init --dir");
  });
});

describe("a certificate's node, as TLS prints its names", () => {
  test("one URI of ours names the node; none, two, or a malformed one name nothing", () => {
    expect(certifiedNodeOf(`IP Address:10.0.0.4, DNS:x, URI:${nodeCertificateUri("peer", "peer-4")}`)).toEqual({ role: "peer", id: "peer-4" });
    expect(certifiedNodeOf("IP Address:10.0.0.4, DNS:x")).toBeUndefined();
    expect(certifiedNodeOf(undefined)).toBeUndefined();
    expect(certifiedNodeOf("URI:urn:mictlanx:peer:a, URI:urn:mictlanx:spm:b")).toBeUndefined();
    expect(certifiedNodeOf("URI:urn:mictlanx:client:a")).toBeUndefined();
    expect(certifiedNodeOf("URI:urn:mictlanx:peer:a:b")).toBeUndefined();
    expect(certifiedNodeOf("URI:urn:mictlanx:peer:")).toBeUndefined();
    expect(certifiedNodeOf(`URI:${nodeCertificateUri("router", "router 1")}`)).toEqual({ role: "router", id: "router 1" });
  });
});
