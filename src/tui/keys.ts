// Keys to actions. Ink hands over a run of plain characters as one input ("j\r" when keys
// arrive together, as tmux send-keys or a fast typist delivers them), so each character of a run
// counts on its own.
import type { Key } from "ink";
import type { Action } from "./model.ts";

export type KeyAction = Action | { type: "quit" };

const pageRows = 10;

export function keyActions(input: string, key: Pick<Key, "upArrow" | "downArrow" | "pageUp" | "pageDown" | "home" | "end" | "return" | "escape" | "ctrl">): KeyAction[] {
  if (key.ctrl && input === "c") return [{ type: "quit" }];
  if (key.upArrow) return [{ type: "move", delta: -1 }];
  if (key.downArrow) return [{ type: "move", delta: 1 }];
  if (key.pageUp) return [{ type: "move", delta: -pageRows }];
  if (key.pageDown) return [{ type: "move", delta: pageRows }];
  if (key.home) return [{ type: "move", delta: -Number.MAX_SAFE_INTEGER }];
  if (key.end) return [{ type: "move", delta: Number.MAX_SAFE_INTEGER }];
  if (key.return) return [{ type: "open" }];
  if (key.escape) return [{ type: "close" }];
  if (key.ctrl) return [];
  const actions: KeyAction[] = [];
  for (const character of input) {
    if (character === "q") actions.push({ type: "quit" });
    else if (character === "k") actions.push({ type: "move", delta: -1 });
    else if (character === "j") actions.push({ type: "move", delta: 1 });
    else if (character === "\r" || character === "\n") actions.push({ type: "open" });
  }
  return actions;
}
