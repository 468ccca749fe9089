// The CI scripts clean up after themselves (issue 11 point 10): every temp file or dir they
// make with mktemp is removed by an EXIT trap, so a run, passing or failing, leaves nothing.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const ciDir = join(import.meta.dir, "../../.ci");

describe(".ci scripts", () => {
  for (const name of readdirSync(ciDir)) {
    test(`${name}: each mktemp is removed by an EXIT trap`, () => {
      const text = readFileSync(join(ciDir, name), "utf8");
      const made = [...text.matchAll(/^\s*(\w+)="?\$\(mktemp[^)]*\)"?/gm)].map((match) => match[1]!);
      const trap = /^\s*trap\s+(?:'([^']*)'|(\w+))\s+EXIT/m.exec(text);
      if (made.length === 0) return;
      expect(trap).not.toBeNull();
      // The trap's command, or the body of the function it names.
      const command = trap![1] ?? new RegExp(`${trap![2]}\\(\\)\\s*\\{([^}]*)\\}`).exec(text)?.[1] ?? "";
      for (const variable of made) expect(command).toMatch(new RegExp(`rm -[rf]+ "?\\$${variable}"?`));
    });
  }
});
