// Helpers that run the real S3 tools (aws-cli, rclone, s3cmd, boto3 through /usr/bin/python3)
// against a test VSS's S3 endpoint. Each tool gets its own config in the test's temp dir, never
// ~/.aws, ~/.s3cfg or ~/.config/rclone, and verifies TLS with the test VSS's CA.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { Sha256 } from "@smithy/core/checksum";
import { SignatureV4 } from "@smithy/signature-v4";

/** What one tool run printed and how it ended. */
export interface ToolRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** How long one tool run may take before it is killed (the 100 MiB cp is the longest). */
export const toolRunMsMax = 120_000;

/** Run `command` with extra env; a timeout kills it by its pid. */
export async function runTool(command: string[], env: Record<string, string>, options: { timeoutMs?: number; cwd?: string } = {}): Promise<ToolRun> {
  const proc = Bun.spawn(command, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env }, ...(options.cwd ? { cwd: options.cwd } : {}) });
  const timer = setTimeout(() => proc.kill("SIGKILL"), options.timeoutMs ?? toolRunMsMax);
  try {
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

/** Like runTool, but a non-zero exit throws with the command and what it printed. */
export async function mustRun(command: string[], env: Record<string, string>, options: { timeoutMs?: number; cwd?: string } = {}): Promise<ToolRun> {
  const run = await runTool(command, env, options);
  if (run.code !== 0) throw new Error(`\`${command.join(" ")}\` exited ${run.code}\nstderr: ${run.stderr.slice(-6000)}\nstdout: ${run.stdout.slice(-2000)}`);
  return run;
}

export interface S3Target {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  /** The CA's PEM file (testCredentials.ca). */
  caFile: string;
  /** The test's temp dir, where each tool's config is written. */
  dir: string;
}

/** aws-cli with its own config and credentials files; `extraConfig` lines go under [default]. */
export function awsCli(target: S3Target, extraConfig: string[] = []) {
  const config = join(target.dir, "aws-config");
  const credentials = join(target.dir, "aws-credentials");
  writeFileSync(config, ["[default]", "region = us-east-1", ...extraConfig, ""].join("\n"));
  writeFileSync(credentials, ["[default]", `aws_access_key_id = ${target.accessKey}`, `aws_secret_access_key = ${target.secretKey}`, ""].join("\n"));
  const env = { AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_CA_BUNDLE: target.caFile, AWS_EC2_METADATA_DISABLED: "true", AWS_PAGER: "" };
  const command = (args: string[]) => ["/usr/bin/aws", "--endpoint-url", target.endpoint, ...args];
  return {
    env,
    run: (args: string[], options?: { timeoutMs?: number }) => runTool(command(args), env, options),
    must: (args: string[], options?: { timeoutMs?: number }) => mustRun(command(args), env, options),
  };
}

/** rclone with a remote `vss` (provider Other) in its own config file. */
export function rclone(target: S3Target) {
  const config = join(target.dir, "rclone.conf");
  writeFileSync(config, ["[vss]", "type = s3", "provider = Other", "env_auth = false", `access_key_id = ${target.accessKey}`, `secret_access_key = ${target.secretKey}`, `endpoint = ${target.endpoint}`, "region = us-east-1", "force_path_style = true", "list_version = 2", ""].join("\n"));
  // rclone 1.60's --ca-cert fails on its s3 backend ("LoadCustomCABundleError: … unsupported
  // transport"): Go reads the trusted roots from SSL_CERT_FILE instead, so the CA is still checked.
  // list_version 2: rclone's default for provider Other is ListObjects V1, which s3cmd covers.
  // TZ=UTC: lsl prints mtimes in local time.
  // An AWS_CA_BUNDLE inherited from the environment hits the same rclone bug: blanked.
  const env = { SSL_CERT_FILE: target.caFile, AWS_CA_BUNDLE: "", TZ: "UTC" };
  const command = (args: string[]) => ["/usr/bin/rclone", "--config", config, "--retries", "1", "--low-level-retries", "1", ...args];
  return { run: (args: string[]) => runTool(command(args), env), must: (args: string[]) => mustRun(command(args), env) };
}

/** s3cmd with its own config file (path-style: host_bucket is the endpoint itself). */
export function s3cmd(target: S3Target) {
  const config = join(target.dir, "s3cfg");
  const url = new URL(target.endpoint);
  writeFileSync(config, ["[default]", `access_key = ${target.accessKey}`, `secret_key = ${target.secretKey}`, `host_base = ${url.host}`, `host_bucket = ${url.host}`, `use_https = ${url.protocol === "https:" ? "True" : "False"}`, `ca_certs_file = ${target.caFile}`, "check_ssl_certificate = True", "bucket_location = us-east-1", "signature_v2 = False", ""].join("\n"));
  const command = (args: string[]) => ["/usr/bin/s3cmd", "-c", config, ...args];
  return { run: (args: string[]) => runTool(command(args), {}), must: (args: string[]) => mustRun(command(args), {}) };
}

/** sha256 hex of a file's bytes. */
export function fileSha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** Every file under `root` by its relative path, with its sha256 (to compare trees file by file). */
export function treeDigest(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else out[relative(root, path)] = fileSha256(path);
    }
  };
  walk(root);
  return out;
}

/**
 * A request signed (SigV4, header auth) with the target's key, sent as it is with fetch: for what
 * a tool cannot send. With `signOnly`, nothing is sent: a Response carrying the signed headers.
 */
export async function signedFetch(target: S3Target, method: string, path: string, headers: Record<string, string>, body: string, region = "us-east-1", options: { signOnly?: boolean } = {}): Promise<Response> {
  const url = new URL(path, target.endpoint);
  const signer = new SignatureV4({ credentials: { accessKeyId: target.accessKey, secretAccessKey: target.secretKey }, region, service: "s3", sha256: Sha256, uriEscapePath: false });
  const query = Object.fromEntries(url.searchParams);
  const date = headers["x-amz-date"];
  const signingDate = date === undefined ? new Date() : new Date(`${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`);
  const signed = await signer.sign({ method, protocol: url.protocol, hostname: url.hostname, port: Number(url.port), path: url.pathname, query, headers: { host: url.host, ...headers }, body }, { signingDate });
  if (options.signOnly) return new Response(null, { headers: signed.headers });
  return fetch(url, { method, headers: signed.headers, body: method === "GET" || method === "HEAD" ? null : body, tls: { ca: readFileSync(target.caFile, "utf8") } });
}
