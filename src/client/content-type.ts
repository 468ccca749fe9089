// Content type from a file name's extension; octet-stream when unknown.
const byExtension: Record<string, string> = {
  txt: "text/plain", md: "text/markdown", csv: "text/csv", json: "application/json", xml: "application/xml",
  html: "text/html", css: "text/css", js: "text/javascript", ts: "text/typescript", pdf: "application/pdf",
  png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", webp: "image/webp", svg: "image/svg+xml",
  mp3: "audio/mpeg", wav: "audio/wav", mp4: "video/mp4", webm: "video/webm", zip: "application/zip",
  gz: "application/gzip", tar: "application/x-tar", parquet: "application/vnd.apache.parquet", npy: "application/octet-stream",
};

export function extensionOf(name: string): string {
  const base = name.split("/").pop() ?? name;
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : "";
}

export function contentTypeFor(name: string): string {
  return byExtension[extensionOf(name)] ?? "application/octet-stream";
}
