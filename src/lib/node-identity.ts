// What a node certificate says about its holder, and how it is read back. A node's role and id
// are written as a URI subject alternative name, `urn:mictlanx:<role>:<id>`: one field, easy to
// find among the host names, and never mistaken for a DNS name by a TLS library.

export const nodeRoles = ["spm", "router", "peer"] as const;
export type NodeRole = (typeof nodeRoles)[number];

export interface CertifiedNode {
  role: NodeRole;
  id: string;
}

const uriPrefix = "urn:mictlanx:";

export function nodeCertificateUri(role: NodeRole, id: string): string {
  return `${uriPrefix}${role}:${encodeURIComponent(id)}`;
}

/**
 * The node a certificate names, from its subject alternative names as TLS libraries print
 * them ("IP Address:10.0.0.4, DNS:peer-4, URI:urn:mictlanx:peer:peer-4"); undefined for a
 * certificate that names no node, or more than one (never guess between two).
 */
export function certifiedNodeOf(subjectAltNames: string | undefined): CertifiedNode | undefined {
  if (!subjectAltNames) return undefined;
  const found: CertifiedNode[] = [];
  for (const entry of subjectAltNames.split(/,\s*/)) {
    if (!entry.startsWith(`URI:${uriPrefix}`)) continue;
    const [role, encodedId, ...rest] = entry.slice(`URI:${uriPrefix}`.length).split(":");
    if (rest.length > 0 || role === undefined || encodedId === undefined || encodedId === "") return undefined;
    if (!(nodeRoles as readonly string[]).includes(role)) return undefined;
    let id: string;
    try {
      id = decodeURIComponent(encodedId);
    } catch {
      return undefined;
    }
    found.push({ role: role as NodeRole, id });
  }
  return found.length === 1 ? found[0] : undefined;
}
