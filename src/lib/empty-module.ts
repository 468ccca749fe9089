// Stands in for `react-devtools-core`, which Ink imports lazily only when DEV is set.
// `bun build --compile` cannot resolve it; this empty module keeps the binary whole.
export default {};
export function connectToDevTools(): void {}
