// `npm start`: build dist/mictlanx if it is missing or older than the sources, then run
// `mictlanx up` with any extra arguments (npm start -- --peers 5).
import { ensureBuilt } from "./ensure-built.ts";

const binary = ensureBuilt();
const up = Bun.spawn([binary, "up", ...process.argv.slice(2)], { stdin: "inherit", stdout: "inherit", stderr: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => up.kill(signal));
process.exit(await up.exited);
