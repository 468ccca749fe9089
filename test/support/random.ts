// Seeded randomness for tests: the seed is printed so a failure replays with MICTLANX_SEED=….
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function seededRandom(label = "test"): { random: () => number; seed: number } {
  const fromEnv = process.env.MICTLANX_SEED;
  const seed = fromEnv ? Number(fromEnv) : Math.floor(Math.random() * 2 ** 31);
  console.log(`[${label}] seed ${seed} (replay with MICTLANX_SEED=${seed})`);
  return { random: mulberry32(seed), seed };
}

export function randomBytes(random: () => number, size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  // Fill 4 bytes at a time: fast enough for MiBs, still fully determined by the seed.
  const view = new DataView(bytes.buffer);
  let i = 0;
  for (; i + 4 <= size; i += 4) view.setUint32(i, Math.floor(random() * 2 ** 32));
  for (; i < size; i += 1) bytes[i] = Math.floor(random() * 256);
  return bytes;
}
