// A router's access keys (src/roles/router/keys.ts): records from the SPM kept in memory,
// refreshed so that a revocation reaches it within keyRevocationMs, kept for keyOfflineTrustMs
// when no SPM answers, bounded. The SPM's answers here come from a table the test changes,
// on a clock the test steps.
import { describe, expect, test } from "bun:test";
import { RouterKeys } from "../../src/roles/router/keys.ts";
import type { KeyRecord } from "../../src/net/authorize.ts";
import { limits } from "../../src/lib/limits.ts";
import { UnavailableError } from "../../src/lib/errors.ts";
import { rejection } from "../support/errors.ts";

function setup() {
  let nowMs = 0;
  const table = new Map<string, KeyRecord>();
  let spmUp = true;
  let asked = 0;
  const keys = new RouterKeys(
    async (accessKey) => {
      asked += 1;
      if (!spmUp) throw new UnavailableError("spm 127.0.0.1:7200 refused the connection; is it running?");
      return table.get(accessKey);
    },
    () => nowMs,
  );
  const record = (accessKey: string, revoked = false): KeyRecord => ({ accessKey, secretKey: "s", grants: [{ bucket: "*", allow: ["read"] }], admin: false, revoked });
  return {
    keys,
    table,
    record,
    step: (ms: number) => (nowMs += ms),
    setSpm: (up: boolean) => (spmUp = up),
    asked: () => asked,
  };
}

describe("a router's key records", () => {
  test("fresh ones are used without asking; past keyRefreshAfterMs they are used and asked for again; past keyRevocationMs a request waits for the answer", async () => {
    const t = setup();
    t.table.set("MXA", t.record("MXA"));
    expect((await t.keys.lookup("MXA"))?.revoked).toBe(false);
    expect(t.asked()).toBe(1);
    t.step(limits.keyRefreshAfterMs - 1);
    await t.keys.lookup("MXA");
    expect(t.asked()).toBe(1); // fresh: not asked
    t.table.set("MXA", t.record("MXA", true)); // revoked at the SPM
    t.step(2);
    expect((await t.keys.lookup("MXA"))?.revoked).toBe(false); // used as it was, asked again behind
    await Bun.sleep(0);
    expect(t.asked()).toBe(2);
    expect((await t.keys.lookup("MXA"))?.revoked).toBe(true); // the background answer is in
  });

  test("a revocation is seen by the first request past keyRevocationMs, whatever came before", async () => {
    const t = setup();
    t.table.set("MXB", t.record("MXB"));
    await t.keys.lookup("MXB");
    t.table.set("MXB", t.record("MXB", true));
    t.step(limits.keyRevocationMs);
    expect((await t.keys.lookup("MXB"))?.revoked).toBe(true);
  });

  test("with no SPM answering, a record validated within keyOfflineTrustMs is used; past it the key is refused as unavailable", async () => {
    const t = setup();
    t.table.set("MXC", t.record("MXC"));
    await t.keys.lookup("MXC");
    t.setSpm(false);
    t.step(limits.keyOfflineTrustMs - 1);
    expect((await t.keys.lookup("MXC"))?.accessKey).toBe("MXC");
    t.step(1);
    const error = await rejection(t.keys.lookup("MXC"));
    expect(error.code).toBe("unavailable");
    expect(error.message).toContain("cannot check access key MXC: no SPM answers");
    expect(error.message).toContain(`trusts a key for ${limits.keyOfflineTrustMs / 1000} s without an SPM`);
    t.setSpm(true);
    expect((await t.keys.lookup("MXC"))?.accessKey).toBe("MXC"); // back as soon as the SPM answers
  });

  test("an unknown key is remembered as unknown, so guesses cost the SPM one lookup per id per refresh", async () => {
    const t = setup();
    expect(await t.keys.lookup("MXNONE")).toBeUndefined();
    expect(await t.keys.lookup("MXNONE")).toBeUndefined();
    expect(t.asked()).toBe(1);
  });

  test("concurrent lookups of one key past its bound share one question to the SPM", async () => {
    const t = setup();
    t.table.set("MXD", t.record("MXD"));
    await t.keys.lookup("MXD");
    t.step(limits.keyRevocationMs);
    await Promise.all(Array.from({ length: 10 }, () => t.keys.lookup("MXD")));
    expect(t.asked()).toBe(2);
  });

  test("at most keyCacheEntriesMax records are kept; the least recently used goes", async () => {
    const t = setup();
    for (let index = 0; index < limits.keyCacheEntriesMax + 1; index += 1) await t.keys.lookup(`MX${index}`);
    expect(t.keys.size).toBe(limits.keyCacheEntriesMax);
    const before = t.asked();
    await t.keys.lookup("MX0"); // the oldest: gone, asked again
    expect(t.asked()).toBe(before + 1);
    await t.keys.lookup(`MX${limits.keyCacheEntriesMax}`); // the newest: kept
    expect(t.asked()).toBe(before + 1);
  });
});
