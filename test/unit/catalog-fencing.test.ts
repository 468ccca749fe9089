// Fencing on both engines (docs/ha.md): a group run with a leader term refuses, in its own
// transaction, a term older than the newest the catalog has seen, and changes nothing; a newer
// term is recorded; two stores on one catalog (two SPMs) see each other's terms. onCommitted
// hears a group's outcomes before the group resolves.
import { expect, test } from "bun:test";
import { leaderTermKey, type GroupOutcome } from "../../src/catalog/index.ts";
import { toMictlanxError } from "../../src/lib/errors.ts";
import { forEachEngine } from "../support/catalog-engines.ts";

forEachEngine("catalog-fencing", (engine) => {
  test("an old leader's group after a new leader's is refused whole; the same and newer terms write", async () => {
    const opened = await engine.open();
    const oldLeader = opened.store;
    const newLeader = await opened.reopen();
    await oldLeader.group([(tx) => tx.setMeta("by-5", "1")], { term: 5 });
    expect(await newLeader.getMeta(leaderTermKey)).toBe("5");
    await newLeader.group([(tx) => tx.setMeta("by-7", "1")], { term: 7 });
    const refused = toMictlanxError(await oldLeader.group([(tx) => tx.setMeta("by-5-late", "1"), (tx) => tx.createBucket("late", 1)], { term: 5 }).then(() => undefined, (error: unknown) => error));
    expect(refused.code).toBe("unavailable");
    expect(refused.message).toContain("this SPM led at term 5");
    expect(refused.message).toContain("has seen term 7");
    expect(await newLeader.getMeta("by-5-late")).toBeUndefined();
    expect(await newLeader.getBucket("late")).toBeUndefined();
    expect(await newLeader.getMeta(leaderTermKey)).toBe("7");
    // The same term again writes; an ungrouped, unfenced group (one SPM alone) writes too.
    await newLeader.group([(tx) => tx.setMeta("by-7-again", "1")], { term: 7 });
    await newLeader.group([(tx) => tx.setMeta("unfenced", "1")]);
    expect(await oldLeader.getMeta("by-7-again")).toBe("1");
    expect(await oldLeader.getMeta("unfenced")).toBe("1");
  });

  // PostgreSQL only: SPMs share it, and a group there waits on the writer lock; a sqlite catalog
  // is one process's, whose second opener would block that process on the file's lock.
  (engine.name === "postgres" ? test : test.skip)("an old leader's group that waited for the lock while a new leader's ran reads the new term: refused", async () => {
    const opened = await engine.open();
    const oldLeader = opened.store;
    const newLeader = await opened.reopen();
    await oldLeader.group([(tx) => tx.setMeta("by-5", "1")], { term: 5 });
    // The new leader's group holds the lock (and the term it records) until let go; the old
    // leader's group is queued behind it meanwhile, its fence read sent (PostgreSQL) with its lock.
    let letGo!: () => void;
    const held = new Promise<void>((resolve) => (letGo = resolve));
    let inside!: () => void;
    const entered = new Promise<void>((resolve) => (inside = resolve));
    const newer = newLeader.group([async (tx) => (await tx.setMeta("by-7", "1"), inside(), await held)], { term: 7 });
    await entered;
    const older = oldLeader.group([(tx) => tx.setMeta("by-5-waited", "1")], { term: 5 }).then(() => undefined, (error: unknown) => toMictlanxError(error));
    await Bun.sleep(200); // the old leader's statements are at the server, waiting on the lock
    letGo();
    await newer;
    const refused = await older;
    expect(refused?.message).toContain("has seen term 7");
    expect(await newLeader.getMeta("by-5-waited")).toBeUndefined();
  });

  test("onCommitted hears each write's outcome once the transaction committed, before the group resolves", async () => {
    const { store } = await engine.open();
    let heard: GroupOutcome[] | undefined;
    let resolved = false;
    const group = store.group(
      [(tx) => tx.setMeta("a", "1").then(() => "first"), async () => Promise.reject(new Error("no")), async (tx) => (await tx.setMeta("b", "1"), "third")],
      { onCommitted: (outcomes) => void (heard = resolved ? undefined : outcomes) },
    );
    const outcomes = await group;
    resolved = true;
    expect(heard?.map((outcome) => (outcome.ok ? outcome.value : `failed: ${outcome.error.message}`))).toEqual(["first", "failed: no", "third"]);
    expect(outcomes).toEqual(heard!);
  });
});
