// The line a role prints once it listens. `mictlanx up` and the tests read it to learn the port
// (src/local/process.ts matches "listening on <host:port>"), so its shape is kept in one place.
// The address after "listening on" is the advertised one, what others dial; when the role binds
// another (0.0.0.0, or a forwarded port), "(bound to …)" says what it binds.
import { joinHostPort } from "../lib/advertise.ts";

export interface ReadyRole {
  address: string;
  port: number;
  metricsAddress?: string | undefined;
}

/** `note`: what else a person should know at start (a role without TLS says so). */
export function printReadyLine(name: string, role: ReadyRole, bindHost?: string, note = ""): void {
  process.stdout.write(`${readyLine(name, role, bindHost, note)}\n`);
}

/** The metrics URL stays last on the line: src/local/process.ts reads it from there. */
export function readyLine(name: string, role: ReadyRole, bindHost?: string, note = ""): string {
  const bound = bindHost === undefined ? role.address : joinHostPort(bindHost, role.port);
  const binds = bound === role.address ? "" : ` (bound to ${bound})`;
  const metrics = role.metricsAddress ? ` (metrics on http://${role.metricsAddress}/metrics)` : "";
  return `mictlanx ${name} listening on ${role.address}${binds}${note}${metrics}`;
}
