// Lifecycle rules, pure (src/s3/lifecycle.ts): the XML parsed, checked and written back, and
// which objects expire at a given time; then the SPM's lifecycle pass (src/roles/spm/lifecycle.ts)
// on a real catalog in a temp dir with a stepped clock: what it deletes, what it leaves, its
// bounds per pass and how it goes on where it stopped.
import { Manifests, type ManifestTransport } from "../../src/roles/spm/manifests.ts";
import { decodeManifestBody, type ManifestWire } from "../../src/protocol/peer.ts";
import { afterEach, describe, expect, test } from "bun:test";
import { limits } from "../../src/lib/limits.ts";
import { SteppedClock } from "../../src/lib/clock.ts";
import { S3Error } from "../../src/s3/errors.ts";
import { daysDeadlineMs, expiringPrefixes, expiresAtMs, isExpired, lifecycleXml, parseLifecycleXml, uploadAbortAtMs, uploadsBegunBeforeMs, type LifecycleConfiguration } from "../../src/s3/lifecycle.ts";
import { AuditTrail } from "../../src/roles/spm/audit.ts";
import { LifecyclePass } from "../../src/roles/spm/lifecycle.ts";
import { WriteBatcher } from "../../src/roles/spm/write-batcher.ts";
import { ballOf, peerRecord, tempStore } from "./fixtures/catalog-records.ts";

const dayMs = 86_400_000;

function s3CodeOf(work: () => unknown): string {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(S3Error);
    return (error as S3Error).s3Code;
  }
  throw new Error("expected an S3Error");
}

const config = (rules: string) => `<?xml version="1.0" encoding="UTF-8"?><LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${rules}</LifecycleConfiguration>`;
const rule = (body: string) => `<Rule>${body}</Rule>`;

describe("parsing", () => {
  test("Days, Date, AbortIncompleteMultipartUpload, Filter/Prefix and the legacy Prefix, Disabled; written back and read again the same", () => {
    const parsed = parseLifecycleXml(config(
      rule("<ID>days</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>30</Days></Expiration>") +
      rule("<ID>date</ID><Prefix>tmp/</Prefix><Status>Disabled</Status><Expiration><Date>2026-01-01T00:00:00.000Z</Date></Expiration>") +
      rule("<ID>mpu</ID><Filter/><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>7</DaysAfterInitiation></AbortIncompleteMultipartUpload>"),
    ));
    expect(parsed.rules).toEqual([
      { id: "days", enabled: true, prefix: "logs/", expiration: { days: 30 } },
      { id: "date", enabled: false, prefix: "tmp/", expiration: { dateMs: Date.UTC(2026, 0, 1) } },
      { id: "mpu", enabled: true, prefix: "", abortIncompleteDays: 7 },
    ]);
    expect(parseLifecycleXml(lifecycleXml(parsed))).toEqual(parsed);
  });

  test("an Expiration Date without a zone, or a date alone, is midnight UTC whatever the local time zone", () => {
    for (const text of ["2026-03-01", "2026-03-01T00:00:00", "2026-03-01T00:00:00.000Z", "2026-03-01T00:00:00+00:00"]) {
      const parsed = parseLifecycleXml(config(rule(`<ID>t</ID><Status>Enabled</Status><Expiration><Date>${text}</Date></Expiration>`)));
      expect(parsed.rules[0]?.expiration).toEqual({ dateMs: Date.UTC(2026, 2, 1) });
    }
    expect(s3CodeOf(() => parseLifecycleXml(config(rule("<ID>t</ID><Status>Enabled</Status><Expiration><Date>March 1</Date></Expiration>"))))).toBe("InvalidArgument");
  });

  test("a rule without an ID gets one made", () => {
    expect(parseLifecycleXml(config(rule("<Status>Enabled</Status><Expiration><Days>1</Days></Expiration>")), () => "made").rules[0]?.id).toBe("made");
  });

  test.each([
    ["Transition", "<ID>t</ID><Status>Enabled</Status><Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>"],
    ["NoncurrentVersionExpiration", "<ID>t</ID><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration>"],
    ["a Tag filter", "<ID>t</ID><Filter><Tag><Key>a</Key><Value>b</Value></Tag></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>"],
    ["an And filter", "<ID>t</ID><Filter><And><Prefix>a</Prefix></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>"],
    ["a size filter", "<ID>t</ID><Filter><ObjectSizeGreaterThan>5</ObjectSizeGreaterThan></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>"],
    ["ExpiredObjectDeleteMarker", "<ID>t</ID><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"],
  ])("%s is NotImplemented", (_what, body) => {
    expect(s3CodeOf(() => parseLifecycleXml(config(rule(body))))).toBe("NotImplemented");
  });

  test.each([
    ["Days 0", "<ID>t</ID><Status>Enabled</Status><Expiration><Days>0</Days></Expiration>", "InvalidArgument"],
    ["Days -1", "<ID>t</ID><Status>Enabled</Status><Expiration><Days>-1</Days></Expiration>", "InvalidArgument"],
    ["a Date not at midnight", "<ID>t</ID><Status>Enabled</Status><Expiration><Date>2026-01-01T10:00:00Z</Date></Expiration>", "InvalidArgument"],
    ["both Days and Date", "<ID>t</ID><Status>Enabled</Status><Expiration><Days>1</Days><Date>2026-01-01T00:00:00Z</Date></Expiration>", "MalformedXML"],
    ["no action", "<ID>t</ID><Status>Enabled</Status><Filter><Prefix>a</Prefix></Filter>", "InvalidRequest"],
    ["a Status of Maybe", "<ID>t</ID><Status>Maybe</Status><Expiration><Days>1</Days></Expiration>", "MalformedXML"],
    ["Filter and Prefix both", "<ID>t</ID><Prefix>a</Prefix><Filter><Prefix>a</Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>", "MalformedXML"],
    ["an element S3 does not have", "<ID>t</ID><Status>Enabled</Status><Expiration><Days>1</Days></Expiration><Colour>red</Colour>", "MalformedXML"],
    ["an ID of 256 bytes", `<ID>${"i".repeat(256)}</ID><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`, "InvalidArgument"],
  ])("%s is %s", (_what, body, code) => {
    expect(s3CodeOf(() => parseLifecycleXml(config(rule(body))))).toBe(code);
  });

  test("an ID of s3LifecycleRuleIdBytesMax bytes is taken; duplicate IDs are not", () => {
    const id = "i".repeat(limits.s3LifecycleRuleIdBytesMax);
    expect(parseLifecycleXml(config(rule(`<ID>${id}</ID><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`))).rules[0]?.id).toBe(id);
    const twice = rule("<ID>same</ID><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>").repeat(2);
    expect(s3CodeOf(() => parseLifecycleXml(config(twice)))).toBe("InvalidArgument");
  });

  test("s3LifecycleRulesMax rules are taken, one more is not; none is malformed", () => {
    const many = (count: number) => Array.from({ length: count }, (_, i) => rule(`<ID>r${i}</ID><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`)).join("");
    expect(parseLifecycleXml(config(many(limits.s3LifecycleRulesMax))).rules.length).toBe(limits.s3LifecycleRulesMax);
    expect(s3CodeOf(() => parseLifecycleXml(config(many(limits.s3LifecycleRulesMax + 1))))).toBe("InvalidRequest");
    expect(s3CodeOf(() => parseLifecycleXml(config("")))).toBe("MalformedXML");
  });
});

describe("evaluation at a given time", () => {
  const created = Date.UTC(2026, 0, 15, 10, 30);
  const rules: LifecycleConfiguration = {
    rules: [
      { id: "logs", enabled: true, prefix: "logs/", expiration: { days: 3 } },
      { id: "dated", enabled: true, prefix: "logs/old/", expiration: { dateMs: Date.UTC(2026, 0, 16) } },
      { id: "off", enabled: false, prefix: "", expiration: { days: 1 } },
      { id: "mpu", enabled: true, prefix: "up/", abortIncompleteDays: 2 },
    ],
  };

  test("Days: creation plus the days, rounded up to the next midnight UTC, as S3 does", () => {
    expect(daysDeadlineMs(created, 3)).toBe(Date.UTC(2026, 0, 19));
    expect(daysDeadlineMs(Date.UTC(2026, 0, 15), 3)).toBe(Date.UTC(2026, 0, 18)); // already at midnight
    expect(isExpired(rules, "logs/a", created, Date.UTC(2026, 0, 19) - 1)).toBe(false);
    expect(isExpired(rules, "logs/a", created, Date.UTC(2026, 0, 19))).toBe(true);
  });

  test("the soonest rule wins; a Date applies to everything under its prefix from that day on", () => {
    expect(expiresAtMs(rules, "logs/old/x", created)).toBe(Date.UTC(2026, 0, 16));
    expect(isExpired(rules, "logs/old/x", created, Date.UTC(2026, 0, 16))).toBe(true);
    expect(isExpired(rules, "logs/old/x", created, Date.UTC(2026, 0, 16) - 1)).toBe(false);
  });

  test("Disabled rules, other prefixes and abort-only rules never expire an object", () => {
    expect(expiresAtMs(rules, "other", created)).toBeUndefined();
    expect(expiresAtMs(rules, "up/part", created)).toBeUndefined();
    expect(isExpired(rules, "other", created, created + 1000 * dayMs)).toBe(false);
  });

  test("AbortIncompleteMultipartUpload: uploads under its prefix are due days after they began", () => {
    expect(uploadAbortAtMs(rules, "up/big", created)).toBe(Date.UTC(2026, 0, 18));
    expect(uploadAbortAtMs(rules, "logs/big", created)).toBeUndefined();
  });

  test("uploadsBegunBeforeMs is the cut-off of uploadAbortAtMs: due exactly when begun before it (2,000 times from seed 13)", () => {
    const seed = 13;
    let state = seed;
    const next = () => (state = (state * 1_103_515_245 + 12_345) % 2 ** 31);
    for (let i = 0; i < 2_000; i += 1) {
      const days = 1 + (next() % 30);
      const initiatedMs = Date.UTC(2026, 0, 1) + (next() % 60) * dayMs + (next() % dayMs);
      const nowMs = initiatedMs + (next() % (40 * dayMs));
      const due = daysDeadlineMs(initiatedMs, days) <= nowMs;
      expect({ seed, i, due: initiatedMs < uploadsBegunBeforeMs(days, nowMs) }).toEqual({ seed, i, due });
    }
    for (const initiatedMs of [Date.UTC(2026, 0, 1), Date.UTC(2026, 0, 1) - 1]) {
      const nowMs = Date.UTC(2026, 0, 3);
      expect(initiatedMs < uploadsBegunBeforeMs(2, nowMs)).toBe(daysDeadlineMs(initiatedMs, 2) <= nowMs);
    }
  });

  test("the pass lists only the prefixes that may expire, overlapping ones folded", () => {
    expect(expiringPrefixes(rules)).toEqual(["logs/"]);
    expect(expiringPrefixes({ rules: [{ id: "a", enabled: true, prefix: "", expiration: { days: 1 } }, { id: "b", enabled: true, prefix: "x", expiration: { days: 1 } }] })).toEqual([""]);
  });
});

describe("the SPM's lifecycle pass", () => {
  const temps: Array<ReturnType<typeof tempStore>> = [];
  afterEach(() => {
    for (const temp of temps.splice(0)) temp.done();
  });

  function setUp(clock: SteppedClock) {
    const temp = tempStore("lifecycle-pass");
    temps.push(temp);
    const { catalog, store } = temp;
    for (const id of ["p1", "p2"]) catalog.upsertPeer(peerRecord(id));
    const writes = new WriteBatcher(store);
    const events: string[] = [];
    const audit = new AuditTrail({ catalog: store, writes, clock, event: (kind) => events.push(kind) });
    // The peers as a recording transport: which tombstones reached which peer (docs/recovery.md).
    const delivered: Array<{ address: string; manifest: ManifestWire }> = [];
    const transport: ManifestTransport = { addressesOf: (ids) => ids, upAddresses: () => ["p1", "p2"], send: async (address, manifest) => void delivered.push({ address, manifest }) };
    const manifests = new Manifests({ clock, transport });
    const pass = new LifecyclePass({ catalog: store, audit, clock, retireNow: () => ({ atMs: clock.wallMs(), readerGraceMs: 0 }), intervalMs: 1000, event: (kind) => events.push(kind), manifests });
    const put = (bucket: string, key: string, objectId: string) => {
      const { ball, chunks } = ballOf({ bucket, key, objectId, peers: [["p1", "p2"]] });
      catalog.commitBall(ball, chunks, {});
    };
    const keys = (bucket: string) => catalog.listBalls({ bucket, limit: limits.listPageMax }).balls.map((ball) => ball.key);
    return { catalog, pass, put, keys, events, delivered };
  }

  test("deletes what expired under the rule's prefix and nothing else; its chunks become garbage", async () => {
    const clock = new SteppedClock(Date.UTC(2026, 5, 1));
    const { catalog, pass, put, keys, delivered } = setUp(clock);
    for (const [key, id] of [["old/a", "object-a1"], ["old/b", "object-b1"], ["new/c", "object-c1"]] as const) put("bucket", key, id);
    put("other", "old/a", "object-other");
    const rules: LifecycleConfiguration = { rules: [{ id: "past", enabled: true, prefix: "old/", expiration: { dateMs: Date.UTC(2026, 0, 1) } }] };
    catalog.setBucketSetting("bucket", "lifecycle", JSON.stringify(rules));
    const garbageBefore = catalog.countGarbage();
    expect(await pass.pass(clock.wallMs())).toEqual({ scanned: 2, expired: 2 });
    expect(keys("bucket")).toEqual(["new/c"]);
    expect(keys("other")).toEqual(["old/a"]); // a bucket without rules is never touched
    expect(catalog.countGarbage()).toBe(garbageBefore + 4); // two balls, one chunk, two replicas each
    expect(catalog.listAudit({ limit: 10 }).records[0]).toMatchObject({ action: "lifecycle.expire", target: "bucket/old/*", outcome: "ok" });
    expect(catalog.audit()).toEqual([]);
    // Each expired ball left its key's tombstone on both holders of its chunk 0, before the pass ended.
    const tombstones = delivered.map(({ address, manifest }) => `${address} ${manifest.key} ${manifest.objectId} ${manifest.dead} ${JSON.stringify(decodeManifestBody(manifest.body))}`).sort();
    expect(tombstones).toEqual(["a1", "b1"].flatMap((id) => ["p1", "p2"].map((peer) => `${peer} old/${id[0]} object-${id} true {"reason":"deleted"}`)).sort());
  });

  test("Days: nothing before the deadline, everything under the prefix at it", async () => {
    const clock = new SteppedClock(Date.UTC(2026, 5, 1, 12));
    const { catalog, pass, put, keys } = setUp(clock);
    catalog.createBucket("bucket", clock.wallMs());
    catalog.setBucketSetting("bucket", "lifecycle", JSON.stringify({ rules: [{ id: "d", enabled: true, prefix: "", expiration: { days: 1 } }] }));
    put("bucket", "a", "object-days"); // made 2023-11-14 by the fixture: long past a day
    expect((await pass.pass(Date.UTC(2023, 10, 14, 23, 59))).expired).toBe(0);
    expect(keys("bucket")).toEqual(["a"]);
    expect((await pass.pass(clock.wallMs())).expired).toBe(1);
    expect(keys("bucket")).toEqual([]);
  });

  test("a pass scans at most lifecycleBallsScannedPerPassMax balls and the next goes on where it stopped", async () => {
    const clock = new SteppedClock(Date.UTC(2026, 5, 1));
    const { catalog, pass, put, keys } = setUp(clock);
    const count = limits.lifecycleBallsScannedPerPassMax + 5;
    catalog.batch(() => {
      for (let i = 0; i < count; i += 1) put("bulk", `keep/${String(i).padStart(6, "0")}`, `object-keep-${i}`);
    });
    put("bulk", "keep/zzz-last", "object-last");
    // Every key is under the rule's prefix but only one expires: the scan bound, not the delete bound, stops the pass.
    catalog.setBucketSetting("bulk", "lifecycle", JSON.stringify({ rules: [{ id: "far", enabled: true, prefix: "keep/", expiration: { days: 100_000 } }, { id: "one", enabled: true, prefix: "keep/zzz", expiration: { dateMs: Date.UTC(2026, 0, 1) } }] }));
    const first = await pass.pass(clock.wallMs());
    expect(first).toEqual({ scanned: limits.lifecycleBallsScannedPerPassMax, expired: 0 });
    const second = await pass.pass(clock.wallMs());
    expect(second).toEqual({ scanned: count + 1 - limits.lifecycleBallsScannedPerPassMax, expired: 1 });
    expect(keys("bulk")).not.toContain("keep/zzz-last");
  }, 30_000);

  test("a pass deletes at most lifecycleBallsDeletedPerPassMax balls; the next deletes the rest", async () => {
    const clock = new SteppedClock(Date.UTC(2026, 5, 1));
    const { catalog, pass, put, keys } = setUp(clock);
    const count = limits.lifecycleBallsDeletedPerPassMax + 3;
    catalog.batch(() => {
      for (let i = 0; i < count; i += 1) put("many", `old/${String(i).padStart(6, "0")}`, `object-old-${i}`);
    });
    put("many", "stays", "object-stays");
    catalog.setBucketSetting("many", "lifecycle", JSON.stringify({ rules: [{ id: "past", enabled: true, prefix: "old/", expiration: { dateMs: Date.UTC(2026, 0, 1) } }] }));
    expect((await pass.pass(clock.wallMs())).expired).toBe(limits.lifecycleBallsDeletedPerPassMax);
    expect(keys("many").length).toBe(4);
    expect((await pass.pass(clock.wallMs())).expired).toBe(3);
    expect(keys("many")).toEqual(["stays"]);
  }, 30_000);

  test("a key put again after it was listed keeps its new version (only the version that expired is deleted)", async () => {
    const clock = new SteppedClock(Date.UTC(2026, 5, 1));
    const { catalog, pass, put } = setUp(clock);
    put("bucket", "old/a", "object-first");
    catalog.setBucketSetting("bucket", "lifecycle", JSON.stringify({ rules: [{ id: "past", enabled: true, prefix: "old/", expiration: { dateMs: Date.UTC(2026, 0, 1) } }] }));
    const listBalls = catalog.listBalls.bind(catalog);
    catalog.listBalls = (q) => {
      const page = listBalls(q);
      put("bucket", "old/a", "object-second"); // a put lands between the listing and the delete
      catalog.listBalls = listBalls;
      return page;
    };
    expect((await pass.pass(clock.wallMs())).expired).toBe(0);
    expect(catalog.getBallMeta("bucket", "old/a")?.objectId).toBe("object-second");
  });

  test("tick runs at most once per interval on the monotonic clock", async () => {
    const clock = new SteppedClock(Date.UTC(2026, 5, 1));
    const { pass } = setUp(clock);
    await pass.tick();
    await pass.tick();
    expect(pass.totals.passes).toBe(1);
    clock.advance(1000);
    await pass.tick();
    expect(pass.totals.passes).toBe(2);
  });
});
