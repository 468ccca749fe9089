// The layout's import rules (docs/architecture.md), checked on every run so the map stays true.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const src = resolve(import.meta.dir, "../../src");

/** Which top-level areas each area may import (besides itself). */
const allowed: Record<string, string[]> = {
  lib: [],
  protocol: ["lib"],
  net: ["lib", "protocol"],
  storage: ["lib"],
  catalog: ["lib"],
  certs: ["lib"],
  s3: ["lib"],
  coordination: ["lib"],
  "roles/peer": ["lib", "protocol", "net", "storage"],
  "roles/router": ["lib", "protocol", "net", "s3"],
  "roles/spm": ["lib", "protocol", "net", "catalog", "s3", "coordination"],
  client: ["lib", "protocol", "net"],
  local: ["lib", "protocol", "net", "certs"],
  tui: ["lib", "protocol", "net"],
  bench: ["lib", "protocol", "net", "client"],
  commands: ["lib", "protocol", "net", "storage", "catalog", "certs", "roles/peer", "roles/router", "roles/spm", "client", "local", "tui", "bench"],
  main: ["commands", "lib"],
};

function areaOf(file: string): string {
  const path = relative(src, file).split("\\").join("/");
  if (path === "main.ts" || path === "program.ts") return "main";
  const parts = path.split("/");
  return parts[0] === "roles" ? `roles/${parts[1]}` : (parts[0] ?? "");
}

function* sources(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sources(path);
    else if (/\.tsx?$/.test(entry.name)) yield path;
  }
}

function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const found = [...text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)].map((match) => match[1] ?? "");
  return found.filter((spec) => spec.length > 0).map((spec) => resolve(dirname(file), spec));
}

describe("architecture", () => {
  test("every folder imports only what docs/architecture.md allows", () => {
    const violations: string[] = [];
    for (const file of sources(src)) {
      const from = areaOf(file);
      expect(Object.keys(allowed)).toContain(from);
      for (const target of imports(file)) {
        if (!target.startsWith(src)) continue; // package.json and the like
        const to = areaOf(target);
        if (to !== from && !(allowed[from] ?? []).includes(to)) violations.push(`${relative(src, file)} → ${relative(src, target)} (${from} may not import ${to})`);
      }
    }
    expect(violations).toEqual([]);
  });

  test.each(["protocol", "s3"])("src/%s does no I/O", (area) => {
    for (const file of sources(join(src, area))) {
      const text = readFileSync(file, "utf8");
      expect(text).not.toMatch(/from "node:(fs|net|child_process)"|Bun\.(listen|connect|file|write|spawn)/);
    }
  });
});
