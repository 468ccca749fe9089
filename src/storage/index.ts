// The peer's storage engine. See store.ts for the layout on disk and record.ts for the format.
export { ChunkStore, indexFileName, type ManifestWrite, type StoredManifest } from "./store.ts";
export { chunkKey, refLabel, validateRef } from "./refs.ts";
export { chunkBallBytesMax } from "./record.ts";
export type {
  ChunkMeta,
  ChunkRef,
  CompactionResult,
  FileIo,
  GetManyResult,
  ListPage,
  ListQuery,
  ScrubClock,
  ScrubFinding,
  ScrubOptions,
  ScrubProgress,
  ShardInfo,
  ShardState,
  StoreOptions,
  StoreStats,
} from "./types.ts";
