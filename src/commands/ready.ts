// The line a role prints once it listens. `mictlanx up` and the tests read it to learn the port
// (src/local/process.ts matches "listening on <host:port>"), so its shape is kept in one place.

export function printReadyLine(name: string, role: { address: string; metricsAddress?: string | undefined }, note = ""): void {
  const metrics = role.metricsAddress ? ` (metrics on http://${role.metricsAddress}/metrics)` : "";
  process.stdout.write(`mictlanx ${name} listening on ${role.address}${metrics}${note}\n`);
}
