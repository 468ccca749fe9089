// Upper bounds of what records weigh on the wire (MessagePack), cheap enough to add up per
// record: pages of metadata and batches of commits are cut by these before they are encoded,
// so no reply or batch ever outgrows a frame however many tags or chunks its balls have.
// Each bound counts the largest header MessagePack may use for a field, so it never
// underestimates; the slack is a few bytes per field.

const encoder = new TextEncoder();

/** A string: its UTF-8 bytes and the largest (str32) header. */
export function stringWireBytes(text: string): number {
  return 5 + (text.length < 64 ? encoder.encode(text).byteLength : Buffer.byteLength(text, "utf8"));
}

/** A number (float64, the largest), a boolean or null: 9 bytes at most. */
const scalarBytes = 9;
/** A map or array header (32-bit length). */
const headerBytes = 5;

function fieldBytes(name: string, valueBytes: number): number {
  return stringWireBytes(name) + valueBytes;
}

export function tagsWireBytes(tags: Record<string, string>): number {
  let total = headerBytes;
  for (const [name, value] of Object.entries(tags)) total += stringWireBytes(name) + stringWireBytes(value);
  return total;
}

/** A ball's metadata as the wire carries it (BallMetaWire: names, numbers, tags). */
export function ballMetaWireBytes(ball: {
  bucket: string;
  key: string;
  ballId: string;
  objectId: string;
  checksum: string;
  contentType: string;
  tags: Record<string, string>;
}): number {
  const strings = [ball.bucket, ball.key, ball.ballId, ball.objectId, ball.checksum, ball.contentType].reduce((sum, text) => sum + stringWireBytes(text), 0);
  const names = ["bucket", "key", "ballId", "objectId", "version", "size", "checksum", "contentType", "tags", "rf", "createdMs", "chunkSize", "numChunks"];
  return headerBytes + names.reduce((sum, name) => sum + fieldBytes(name, 0), 0) + strings + 6 * scalarBytes + tagsWireBytes(ball.tags);
}

/** One chunk record: index, size, checksum and its peers' ids. */
export function chunkRecordWireBytes(chunk: { checksum: string; peers: readonly string[] }): number {
  const peers = chunk.peers.reduce((sum, id) => sum + stringWireBytes(id), headerBytes);
  return headerBytes + fieldBytes("index", scalarBytes) + fieldBytes("size", scalarBytes) + fieldBytes("checksum", stringWireBytes(chunk.checksum)) + fieldBytes("peers", peers);
}
