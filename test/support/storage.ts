// Stores in temp dirs for the engine's unit tests: opened quietly, closed and removed after
// each test. `logs`, when given, collects what the engine reports (repairs, corruption).
import { afterEach } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ChunkStore, type StoreOptions } from "../../src/storage/index.ts";

/** A log that drops what the engine reports, for tests that open stores by hand. */
export const quiet = (): void => undefined;

export function storeFixture(prefix: string) {
  const dirs: string[] = [];
  const stores: ChunkStore[] = [];

  const tempDir = (): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mx-${prefix}-`));
    dirs.push(dir);
    return dir;
  };

  const openStore = async (options: Partial<StoreOptions> = {}, logs?: string[]): Promise<ChunkStore> => {
    const log = logs ? (message: string) => void logs.push(message) : quiet;
    const store = await ChunkStore.open({ dir: options.dir ?? tempDir(), log, ...options });
    stores.push(store);
    return store;
  };

  const closeAll = async (): Promise<void> => {
    for (const store of stores.splice(0)) await store.close();
  };

  /** A store the test closed itself: not closed again after the test. */
  const forget = (store: ChunkStore): void => {
    const at = stores.indexOf(store);
    if (at >= 0) stores.splice(at, 1);
  };

  afterEach(async () => {
    await closeAll();
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  return { tempDir, openStore, closeAll, forget };
}
