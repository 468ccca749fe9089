// What the dashboard needs from the environment before Ink and its colour library load. Pure:
// it reads and returns environment values, so it is tested without a terminal.

/**
 * The FORCE_COLOR value to set before Ink loads, or undefined to leave the environment alone.
 *
 * Ink's colour library turns colour off when `CI` is set (it takes CI to mean "a log file"),
 * but the dashboard only runs on a terminal, and a peer's state in colour is part of what it
 * shows. So: a user's FORCE_COLOR wins; NO_COLOR (https://no-color.org) turns colour off;
 * TERM=dumb gets none; otherwise colour is on and its depth is left to detection.
 */
export function forceColorFor(env: Record<string, string | undefined>): string | undefined {
  if (env.FORCE_COLOR !== undefined) return undefined;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return "0";
  if (env.TERM === "dumb") return "0";
  return "true";
}
