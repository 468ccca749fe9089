// The catalog's public face. The SPM uses only what is exported here; no SQL leaves src/catalog.
export { Catalog, secretsKeyFile, type CatalogOpenOptions } from "./catalog.ts";
export { catalogCallNames, fencedOut, leaderTermKey, type CatalogCalls, type CatalogEngineName, type CatalogStore, type GroupOptions, type GroupOutcome, type GroupWrite } from "./api.ts";
export { SqliteStore, catalogCalls } from "./sqlite-store.ts";
export { openCatalogStore, parseCatalogUrl, type CatalogUrl, type OpenCatalogOptions } from "./open.ts";
export { backupCatalog, backupKeySuffix, type BackupOptions, type BackupResult } from "./backup.ts";
export { compareUtf8, prefixEnd } from "./cursor.ts";
export { committedBall } from "./rows.ts";
export { bucketSettingNames, type BucketSettingName } from "./bucket-settings.ts";
export { abortMultipartUploadsBefore, type AbortUploadsQuery } from "./multipart.ts";
export { peerStates } from "./types.ts";
export type { Holding } from "./replication.ts";
export type {
  AccessKeyRecord,
  AccessKeySummary,
  AuditInput,
  AuditRecord,
  BallCount,
  BallInput,
  BallRecord,
  BallWithChunks,
  BucketSummary,
  CatalogStats,
  ChunkRecord,
  CommitItem,
  CommitOptions,
  CommitResult,
  DeleteBallsQuery,
  DeleteBallsResult,
  FoundChunk,
  GarbageEntry,
  GarbageInput,
  GarbageItem,
  IntentOutcome,
  ListBallsQuery,
  OverReplicatedChunk,
  Page,
  PeerChunk,
  PeerRecord,
  PeerState,
  Placement,
  PutIntent,
  ReplicaRef,
  RetiredChunk,
  RetireTiming,
  UnderReplicatedChunk,
} from "./types.ts";
