// The public library: `import { Client } from "mictlanx"`.
export {
  Client,
  clientDefaults,
  type ClientOptions,
  type PutOptions,
  type PutResult,
  type PutData,
  type PutItem,
  type GetOptions,
  type Verify,
  verifyModes,
  type BallRef,
  type BallStream,
  type ClientStats,
  type Outcome,
} from "./client.ts";
export type { ByteSource } from "./chunker.ts";
export { KeyRequiredError, DecryptError, keyFromHex, keyFromFile } from "./seal.ts";
export { DecompressError } from "../lib/compress.ts";
export type { BallMetaWire as BallMeta, BallLocated } from "../protocol/ball.ts";
export { MictlanxError, CorruptError, NotFoundError, ConflictError, errorCodes, type ErrorCode } from "../lib/errors.ts";
