// What an access key may do: per bucket (or bucket pattern), a set of actions.
// (A first cut for the net layer; the keys work replaces it with the full module.)
export const actions = ["read", "list", "write", "delete"] as const;
export type Action = (typeof actions)[number];
export interface Grant {
  bucket: string;
  allow: Action[];
}

function matches(pattern: string, bucket: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith("*")) return bucket.startsWith(pattern.slice(0, -1));
  return pattern === bucket;
}

export function grantsAllow(grants: readonly Grant[], bucket: string, action: Action): boolean {
  return grants.some((grant) => grant.allow.includes(action) && matches(grant.bucket, bucket));
}
