// The public library: `import { Client } from "mictlanx"`.
export { Client, type ClientOptions, type PutOptions, type PutResult, type GetOptions } from "./client.ts";
export type { ByteSource } from "./chunker.ts";
export { MictlanxError, errorCodes, type ErrorCode } from "../lib/errors.ts";
