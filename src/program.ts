// The mictlanx command line. Every subcommand is declared here with its flags and an example,
// so `--help` teaches; the work itself is imported lazily so that `mictlanx --version` and the
// client commands start fast (Ink and React load only for `tui`).
import { registerCatalogMigrate } from "./commands/catalog-migrate.ts";
import { Command, CommanderError, Option } from "commander";
import pkg from "../package.json" with { type: "json" };
import { action } from "./commands/run.ts";
import { defaults } from "./lib/defaults.ts";
import { limits, units, vssTimings } from "./lib/limits.ts";
import { verifyModes } from "./lib/verify.ts";

// The peer's scrub defaults, as the flags spell them, from the limits they describe.
const scrubRateDefault = `${limits.scrubBytesPerSecDefault / units.MiB}MiB`;
const scrubIntervalDefault = `${limits.scrubPassIntervalMsDefault / 60_000}m`;

/** A repeatable option's values, in order. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function example(command: Command, lines: string[], exitCodes?: string): Command {
  const codes = exitCodes === undefined ? "" : `\nExit codes: ${exitCodes}\n`;
  return command.addHelpText("after", `\nExamples:\n${lines.map((line) => `  $ ${line}`).join("\n")}\n${codes}`);
}

export function buildProgram(): Command {
  const program = new Command("mictlanx")
    .description("A distributed object store: peers keep chunks, routers place replicas, the SPM heals.")
    .version(pkg.version, "-V, --version", "print the version")
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText(
      "after",
      `\nA VSS (virtual storage space) is one SPM, its routers and its peers.\n` +
        `Start one locally with "mictlanx up", then use put/get/ls from another shell.\n` +
        `Exit codes: 0 ok, 1 failure, 2 usage, 3 not allowed (no key, a grant missing), 4 not found.\n`,
    );

  example(
    program
      .command("spm")
      .summary("run the control plane: peer health, catalog, placement, healing")
      .description("Run the SPM (storage replica management): the peer registry, the catalog and recovery.")
      .requiredOption("--port <port>", "TCP port to listen on")
      .requiredOption("--data <dir>", "directory for the catalog")
      .option("--host <host>", "address to listen on", defaults.host)
      .option("--advertise <host:port>", "the address peers, routers and clients (their --spm) dial, if not --host: needed with --host 0.0.0.0 or a forwarded port; :PORT left out is the port it listens on")
      .option("--tls-cert <file>", "this node's certificate (PEM), from mictlanx certs issue; it must name this node")
      .option("--tls-key <file>", "its private key (PEM)")
      .option("--tls-ca <file>", "the VSS's CA certificate (ca.crt): every other node and every client must be signed by it or trust it")
      .option("--insecure", "no TLS and no access keys: anyone who can reach the port can do anything (a quick look on one machine only)")
      .option("--suspect-after <time>", "no heartbeat this long: peer suspect", "3s")
      .option("--down-after <time>", "no heartbeat this long: peer down, healing starts (grace period)", "10s")
      .option("--heal-rate <size>", "bytes per second healing may copy", "256MiB")
      .option("--reader-grace <time>", "how long an overwritten or deleted version stays readable for reads that started on it", "5m")
      .option("--upload-ttl <time>", "an upload that makes no progress for this long is abandoned and its chunks collected", "10m")
      .option("--reconcile-every <time>", "check each peer's holdings against the catalog at least this often", "10m")
      .option("--orphan-grace <time>", "a chunk on a peer that no ball uses is deleted only once older than this", "1h")
      .option("--lifecycle-every <time>", "apply the buckets' S3 lifecycle rules (expiration) at most this often", "10m")
      .option("--catalog <url>", "where the catalog is: sqlite:DIR (default: the data dir's catalog.sqlite), or postgres://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE, shared by several SPMs (secrets.key stays in --data; docs/catalog-postgres.md)")
      .option("--coordination <url>", "several SPMs of one VSS: elect one leader on etcd at etcd://host:2379[,host:2379…]; the others serve reads as standbys (docs/ha.md)")
      .option("--lease-ttl <time>", "with --coordination: the leader's etcd lease; a dead leader is replaced about this long after (whole seconds)", "5s")
      .option("--metrics-port <port>", "serve Prometheus metrics here: a port, 0 for any free one, or off (default: --port + 1000)")
      .option("--metrics-host <host>", "the address metrics are served on (default 127.0.0.1: this host's scraper only; 0.0.0.0 for every address)")
      .option(
        "--credentials <file>",
        "the first admin key: on a catalog with no keys yet, imported from FILE if it holds { accessKey, secretKey }, else made and written there (mode 0600); never written again (default: DIR/credentials.json)",
      )
      .option("--rebuild-catalog", "before serving, rebuild a lost catalog (missing or empty) from the peers' manifests and chunks (with --from-peers; docs/recovery.md)")
      .option("--from-peers", "what --rebuild-catalog rebuilds from: the peers named by --peers")
      .option("--peers <host:port,...>", "every peer of the VSS, for --rebuild-catalog: all must answer")
      .option("--force", "with --rebuild-catalog: set a catalog that is not empty aside (kept as catalog.sqlite.before-rebuild-…) instead of refusing")
      .action(action(async (flags) => (await import("./commands/spm.ts")).runSpmCommand(flags))),
    [
      "mictlanx spm --port 7200 --data /var/lib/mictlanx/spm   # first start: the admin key goes to /var/lib/mictlanx/spm/credentials.json",
      "mictlanx spm --port 7200 --data /var/lib/mictlanx/spm --host 0.0.0.0 --advertise 10.0.0.1:7200",
      "mictlanx spm --port 7200 --data /var/lib/mictlanx/spm --rebuild-catalog --from-peers --peers 10.0.0.4:7210,10.0.0.5:7210,10.0.0.6:7210",
    ],
  );

  example(
    program
      .command("peer")
      .summary("run a storage peer: chunks on one disk")
      .description("Run a storage peer: a durable chunk store on one disk (the data plane).")
      .option("--port <port>", "TCP port to listen on")
      .option("--data <dir>", "directory for shards and the index")
      .option("--id <id>", "peer id (default: kept in DIR, generated on first start)")
      .option("--host <host>", "address to listen on", defaults.host)
      .option("--advertise <host:port>", "the address the SPM, routers and other peers dial, if not --host: needed with --host 0.0.0.0 or a forwarded port; :PORT left out is the port it listens on")
      .option("--tls-cert <file>", "this node's certificate (PEM), from mictlanx certs issue; it must name this node")
      .option("--tls-key <file>", "its private key (PEM)")
      .option("--tls-ca <file>", "the VSS's CA certificate (ca.crt): every other node and every client must be signed by it or trust it")
      .option("--insecure", "no TLS and no access keys: anyone who can reach the port can do anything (a quick look on one machine only)")
      .option("--capacity <size>", "bytes this peer may store, e.g. 100GiB", "100GiB")
      .option("--shard-size <size>", "roll the active shard to read-only at this size", "1GiB")
      .option("--spm <host:port,...>", "register with these SPMs (several sharing one catalog: each gets heartbeats) and send heartbeats")
      .option("--compaction-interval <time>", "how often to look for shards worth compacting", "30s")
      .option("--scrub-rate <size>", "bytes per second the background scrub reads to verify stored chunks; 0 or off turns it off", scrubRateDefault)
      .option("--scrub-interval <time>", "start a scrub pass at most this often (a bigger store is scrubbed pass after pass)", scrubIntervalDefault)
      .option("--metrics-port <port>", "serve Prometheus metrics here: a port, 0 for any free one, or off (default: --port + 1000)")
      .option("--metrics-host <host>", "the address metrics are served on (default 127.0.0.1: this host's scraper only; 0.0.0.0 for every address)")
      .option("--rebuild-index", "rebuild the index from the shards, then exit (refused for a dir with no shards)")
      .action(action(async (options: Record<string, unknown>) => {
        const { runPeerCommand } = await import("./commands/peer.ts");
        await runPeerCommand(options);
      })),
    ["mictlanx peer --port 7210 --data ./peer-a --capacity 50GiB", "mictlanx peer --port 7210 --data ./peer-a --spm 10.0.0.1:7200 --host 0.0.0.0 --advertise 10.0.0.4:7210", "mictlanx peer --port 7210 --data ./peer-a --scrub-rate 32MiB", "mictlanx peer --data ./peer-a --rebuild-index", "mictlanx peer drain peer-1"],
  );
  const peerCommand = program.commands.find((command) => command.name() === "peer");
  if (peerCommand) {
    example(
      peerCommand
        .command("drain")
        .summary("move every chunk off a peer before it is removed")
        .description(
          "Ask the SPM to move every chunk off a peer; every ball stays readable meanwhile. Refused when the other peers could never hold its chunks at their rf. " +
            "`mictlanx status` shows the chunks left and moved off, and what keeps any there (too few other peers for their rf, no room, no replica up to copy from).",
        )
        .argument("<id>", "the peer's id (see mictlanx status)")
        .addOption(new Option("--spm <host:port,...>", "the SPMs, several sharing one catalog (default: MICTLANX_SPM, else those of ./.mictlanx/vss.json after up --ha, else the `up` default)"))
        .option("--json", "print JSON")
        // `peer` has its own --spm, so commander may give the flag to it: read both levels.
        .action(action(async (id, _flags, command: Command) => (await import("./commands/status.ts")).drainCommand(id, command.optsWithGlobals()))),
      ["mictlanx peer drain peer-1 && mictlanx status"],
    );
    example(
      peerCommand
        .command("undrain")
        .summary("cancel a drain: the peer takes new data again")
        .description("Cancel a drain. Chunks already moved stay where they are; the peer takes new placements again.")
        .argument("<id>", "the peer's id (see mictlanx status)")
        .addOption(new Option("--spm <host:port,...>", "the SPMs, several sharing one catalog (default: MICTLANX_SPM, else those of ./.mictlanx/vss.json after up --ha, else the `up` default)"))
        .option("--json", "print JSON")
        .action(action(async (id, _flags, command: Command) => (await import("./commands/status.ts")).undrainCommand(id, command.optsWithGlobals()))),
      ["mictlanx peer undrain peer-1"],
    );
    example(
      peerCommand
        .command("remove")
        .summary("forget a peer that is down or drained")
        .description(
          "Forget a peer for good. It must be down (stopped) or draining; the replicas it still holds are healed from the other peers. " +
            "Refused while it holds the only replica of any chunk.",
        )
        .argument("<id>", "the peer's id (see mictlanx status)")
        .addOption(new Option("--spm <host:port,...>", "the SPMs, several sharing one catalog (default: MICTLANX_SPM, else those of ./.mictlanx/vss.json after up --ha, else the `up` default)"))
        .option("--json", "print JSON")
        .action(action(async (id, _flags, command: Command) => (await import("./commands/status.ts")).removeCommand(id, command.optsWithGlobals()))),
      ["mictlanx peer drain peer-3 && mictlanx status   # wait until it holds nothing", "mictlanx peer remove peer-3"],
    );
  }

  example(
    program
      .command("router")
      .summary("run a gateway: placement, replicas, failover")
      .description("Run a stateless router that clients talk to.")
      .requiredOption("--port <port>", "TCP port to listen on")
      .option("--spm <host:port,...>", "the SPMs of this VSS, several sharing one catalog: the leader is asked first, the others when it cannot be reached, and each gets heartbeats (default: MICTLANX_SPM, else the `up` default)")
      .option("--host <host>", "address to listen on", defaults.host)
      .option("--advertise <host:port>", "the address clients (their --router / MICTLANX_ROUTERS) dial, if not --host: needed with --host 0.0.0.0 or a forwarded port; :PORT left out is the port it listens on")
      .option("--tls-cert <file>", "this node's certificate (PEM), from mictlanx certs issue; it must name this node")
      .option("--tls-key <file>", "its private key (PEM)")
      .option("--tls-ca <file>", "the VSS's CA certificate (ca.crt): every other node and every client must be signed by it or trust it")
      .option("--insecure", "no TLS and no access keys: anyone who can reach the port can do anything (a quick look on one machine only)")
      .option("--metrics-port <port>", "serve Prometheus metrics here: a port, 0 for any free one, or off (default: --port + 1000)")
      .option("--metrics-host <host>", "the address metrics are served on (default 127.0.0.1: this host's scraper only; 0.0.0.0 for every address)")
      .option("--s3-port <port>", "also serve the S3 API (path-style, SigV4 with this VSS's access keys; HTTPS with the router's certificate, HTTP with --insecure) on this port, 0 for any free one (default: off; docs/s3.md)")
      .option("--s3-region <region>", "the region S3 clients sign for", limits.s3RegionDefault)
      .option("--s3-domain <domain>", "also take virtual-hosted-style S3 requests: a Host of BUCKET.DOMAIN names the bucket (path-style works always)")
      .option("--s3-multipart-lifetime <time>", `how long an S3 multipart upload lives before it and its parts are deleted (default ${limits.s3MultipartUploadMsMax / 86_400_000}d, the most)`)
      .option("--serve-held-reads", "while no SPM can be reached, answer gets of balls this router served before from what it holds (never older than what it served; a delete or overwrite made through another router meanwhile is not seen: docs/reliability.md)")
      .action(action(async (flags) => (await import("./commands/router.ts")).runRouterCommand(flags))),
    ["mictlanx router --port 7201 --spm 127.0.0.1:7200", "mictlanx router --port 7201 --spm 10.0.0.1:7200,10.0.0.2:7200,10.0.0.3:7200", "mictlanx router --port 7201 --spm 10.0.0.1:7200 --host 10.0.0.2", "mictlanx router --port 7201 --spm 127.0.0.1:7200 --s3-port 7280"],
  );

  example(
    program
      .command("up")
      .summary("start a whole local VSS (spm, routers, peers) in one command")
      .description("Start a local VSS as separate processes of this binary; Ctrl-C stops them all.")
      .option("--data <dir>", "where the VSS keeps its data", defaults.upDataDir)
      .option("--peers <n>", "number of peers", String(defaults.upPeers))
      .option("--routers <n>", "number of routers", String(defaults.upRouters))
      .option("--port <base>", "SPM at BASE, routers at BASE+1…, peers at BASE+10…, the routers' S3 endpoints at BASE+80… (docs/s3.md)", String(defaults.upBasePort))
      .option("--insecure", "no TLS and no access keys, for a quick look (every role says so); by default DIR gets a CA, certificates and an admin key in DIR/credentials.json")
      .option("--ha", "3 SPMs sharing a PostgreSQL catalog, electing a leader on etcd (both from this machine's packages, under DIR): SPMs at BASE+100…102, etcd at BASE+110 (peer port BASE+112), PostgreSQL at BASE+111 (docs/ha.md)")
      .option("--s3-domain <domain>", "passed to the routers: virtual-hosted-style S3, a Host of BUCKET.DOMAIN names the bucket (docs/s3.md)")
      .option("--no-restart", "do not restart a child that dies (by default it is restarted with backoff, and one that keeps dying stops up)")
      .option("--suspect-after <time>", `passed to the spm: no heartbeat this long, peer suspect (default ${vssTimings.suspectAfterMs / 1000}s)`)
      .option("--down-after <time>", `passed to the spm: no heartbeat this long, peer down and healing starts (default ${vssTimings.downAfterMs / 1000}s)`)
      .action(action(async (flags) => (await import("./commands/up.ts")).runUpCommand(flags))),
    ["mictlanx up", "mictlanx up --ha   # 3 SPMs on PostgreSQL and etcd", "mictlanx up --data /tmp/vss --peers 5 --routers 2 --port 8000", "mictlanx up --port 0 --no-restart --suspect-after 1s --down-after 3s"],
  );

  const routerOption = () => new Option("--router <host:port,...>", "routers to use (default: MICTLANX_ROUTERS, else the `up` default)");
  const verifyOption = () =>
    new Option("--verify <what>", "what a get checks: full (each chunk's xxh3 and the ball's sha256) or chunks (each chunk's xxh3 only: no sha256 over the whole, less CPU on big balls; docs/client.md)")
      .choices(verifyModes)
      .default("full");
  const spmOption = () => new Option("--spm <host:port,...>", "the SPMs, several sharing one catalog (default: MICTLANX_SPM, else those of ./.mictlanx/vss.json after up --ha, else the `up` default)");

  example(
    program
      .command("put")
      .summary("store a file or stdin as a ball, or a whole directory tree")
      .argument("<bucket/key>", "where to store it (with --recursive: a bucket, or bucket/prefix)")
      .argument("[file]", "file to read, or - for stdin", "-")
      .addOption(routerOption())
      .option("--rf <n>", "replication factor", String(defaults.replicationFactor))
      .option("--chunk-size <size>", "chunk size, 4KiB to 8MiB, e.g. 256KiB or 1MiB", "1MiB")
      .option("--ball-id <id>", "group this ball with others under one ball id")
      .option("--tag <k=v...>", "a tag to attach (repeatable)")
      .option("--content-type <type>", "content type (default: from the extension)")
      .option("--if-absent", "fail instead of overwriting an existing ball")
      .option("--recursive", "put every file under a directory, keyed by relative path (an empty directory becomes a folder marker, key ending in /)")
      .option("--follow-symlinks", "with --recursive: walk into symbolic links to directories (links to files are always followed; loops are skipped)")
      .option("--compress", "compress each chunk with zstd before it is stored (and encrypted)")
      .option("--key-file <file>", "encrypt with the key in this file: 32 raw bytes or 64 hex digits (default: MICTLANX_KEY)")
      .option("--json", "print the result as JSON")
      .action(action(async (target, file, flags) => (await import("./commands/client.ts")).putCommand(target, file, flags))),
    [
      "mictlanx put photos/cat.jpg ./cat.jpg --rf 3",
      "cat big.bin | mictlanx put data/big.bin -",
      "mictlanx put logs/today.ndjson - --compress",
      "MICTLANX_KEY=$(cat key.hex) mictlanx put vault/a.pdf a.pdf",
      "mictlanx put docs ./site --recursive            # keys site-relative, at the bucket's root",
      "mictlanx put docs/v2 ./site --recursive --follow-symlinks",
    ],
    "0 ok (with --recursive: skipped links and special files are said on stderr, not failures), 1 failure (a file not stored), 2 usage",
  );

  example(
    program
      .command("get")
      .summary("fetch a ball to a file or stdout, or every ball under a prefix into a directory")
      .argument("<bucket/key>", "what to fetch (with --recursive: a bucket, or bucket/prefix)")
      .addOption(routerOption())
      .option("-o, --output <file>", "file to write, or - for stdout", "-")
      .option("--ball-id <id>", "fetch every ball of a group into the directory given by -o")
      .option("--recursive", "fetch every ball under the prefix into the directory given by -o, as DIR/<key without the prefix>; a summary at the end")
      .option("--key-file <file>", "decrypt with the key in this file: 32 raw bytes or 64 hex digits (default: MICTLANX_KEY)")
      .addOption(verifyOption())
      .action(action(async (target, flags) => (await import("./commands/client.ts")).getCommand(target, flags))),
    ["mictlanx get photos/cat.jpg -o cat.jpg", "mictlanx get data/big.bin -o - | sha256sum", "mictlanx get data/big.bin -o big.bin --verify chunks   # each chunk's xxh3, no whole-ball sha256", "mictlanx get docs/v2 --recursive -o ./site   # docs/v2/a/b.html -> ./site/a/b.html", "mictlanx get frames --ball-id run-7 -o ./run-7"],
    "0 ok, 1 failure (with --recursive or --ball-id: a ball skipped because it would land outside DIR, or not written), 2 usage, 4 not found (nothing under the prefix)",
  );

  example(
    program
      .command("del")
      .summary("delete a ball, a ball group, or every ball under a prefix")
      .argument("<bucket/key>", "what to delete (with --recursive: a bucket, or bucket/prefix)")
      .addOption(routerOption())
      .option("--ball-id <id>", "delete every ball of this group")
      .option("--recursive", "delete every ball under the prefix (the whole bucket's without one), on the SPM in batches; asks first on a terminal")
      .option("-y, --yes", "with --recursive: do not ask (needed when there is no terminal to ask on)")
      .option("--json", "print JSON")
      .action(action(async (target, flags) => (await import("./commands/client.ts")).delCommand(target, flags))),
    ["mictlanx del photos/cat.jpg", "mictlanx del photos --ball-id album-2024", "mictlanx del photos/2023 --recursive          # asks: delete 1,204 ball(s) in photos/2023/? [y/N]", "mictlanx del scratch --recursive --yes         # every ball of the bucket, no question"],
    "0 ok (also when the question is answered no), 1 failure, 2 usage (--recursive without --yes and no terminal), 4 not found (nothing to delete)",
  );

  example(
    program
      .command("mb")
      .summary("make an empty bucket")
      .description("Make an empty bucket. It stays, listed with 0 balls, until rb; a put into a bucket that does not exist still makes it.")
      .argument("<bucket>", "the bucket's name")
      .addOption(routerOption())
      .option("--json", "print JSON")
      .action(action(async (bucket, flags) => (await import("./commands/client.ts")).mbCommand(bucket, flags))),
    ["mictlanx mb photos"],
    "0 ok, 1 failure (e.g. the bucket exists), 2 usage",
  );

  example(
    program
      .command("rb")
      .summary("remove a bucket (only when empty, unless --force)")
      .argument("<bucket>", "the bucket's name")
      .addOption(routerOption())
      .option("--force", "delete every ball in it first (as del --recursive does, without asking)")
      .option("--json", "print JSON")
      .action(action(async (bucket, flags) => (await import("./commands/client.ts")).rbCommand(bucket, flags))),
    ["mictlanx rb photos", "mictlanx rb scratch --force"],
    "0 ok, 1 failure (e.g. the bucket holds balls and no --force), 2 usage, 4 not found",
  );

  example(
    program
      .command("ls")
      .summary("list buckets, or the balls in a bucket")
      .argument("[bucket/prefix]", "bucket (and key prefix) to list; none lists buckets")
      .addOption(routerOption())
      .option("--ball-id <id>", "only balls of this group")
      .option("--json", "print JSON")
      .action(action(async (target, flags) => (await import("./commands/client.ts")).lsCommand(target, flags))),
    ["mictlanx ls", "mictlanx ls photos/2024/ --json"],
  );

  example(
    program
      .command("stat")
      .summary("show a ball's metadata and where its chunks are")
      .argument("<bucket/key>", "the ball")
      .addOption(routerOption())
      .option("--json", "print JSON")
      .action(action(async (target, flags) => (await import("./commands/client.ts")).statCommand(target, flags))),
    ["mictlanx stat photos/cat.jpg --json"],
  );

  const certs = program.command("certs").summary("make the VSS's CA and its nodes' certificates (no OpenSSL needed)");
  example(
    certs
      .command("init")
      .summary("make a CA for a new VSS: ca.crt and ca.key in --dir")
      .option("--dir <dir>", "where to write ca.crt and ca.key (mode 0600)")
      .option("--days <n>", `how long the CA is good for (default ${limits.caValidityDaysDefault})`)
      .option("--json", "print the paths as JSON")
      .action(action(async (flags) => (await import("./commands/certs.ts")).certsInitCommand(flags))),
    ["mictlanx certs init --dir ./ca"],
  );
  example(
    certs
      .command("issue")
      .summary("issue or renew a node's certificate: <id>.crt and <id>.key beside ca.crt")
      .description(
        "Issue a certificate for one node, signed by the CA in --dir. It names the node's role and id (the SPM takes a peer's heartbeats only " +
          "over a connection whose certificate names that peer) and the hosts it is dialled at. Run it again to renew: the files are replaced; " +
          "send the role SIGHUP to load them without a restart.",
      )
      .option("--dir <dir>", "the CA's dir (from certs init)")
      .option("--role <role>", "spm, router or peer")
      .option("--id <id>", "the node's id: a peer's --id (peer-4), a router's --id (router-1), spm for the SPM")
      .option("--host <host>", "an IP address or DNS name the node is dialled at (its --advertise host); repeat for more", collect, [])
      .option("--days <n>", `how long it is good for (default ${limits.certificateValidityDaysDefault})`)
      .option("--json", "print the paths and expiry as JSON")
      .action(action(async (flags) => (await import("./commands/certs.ts")).certsIssueCommand(flags))),
    ["mictlanx certs issue --dir ./ca --role peer --id peer-4 --host 10.0.0.4", "mictlanx certs issue --dir ./ca --role router --id router-1 --host 10.0.0.2 --host gw.example.net"],
  );

  example(
    program
      .command("status")
      .summary("the VSS at a glance: peers, routers, balls, healing")
      .addOption(spmOption())
      .option("--json", "print JSON")
      .action(action(async (flags) => (await import("./commands/status.ts")).statusCommand(flags))),
    ["mictlanx status", "mictlanx status --json --spm 127.0.0.1:7200"],
  );

  const keyCommand = program
    .command("key")
    .summary("access keys: create, list, revoke (needs an admin key)")
    .description(
      "Access keys for people and programs, kept by the SPM. A key holds grants, each a bucket pattern and what it allows there: " +
        "read (get, stat), list (ls), write (put, mb), delete (del, rb). A pattern is a bucket name (photos), a prefix and * (logs-*: every bucket whose name starts with logs-), or * (every bucket). " +
        "--admin lets the key manage the VSS itself: keys, drain, undrain, remove, status, audit. See docs/security.md.",
    );
  example(
    keyCommand
      .command("create")
      .summary("make a key; prints its id and secret once")
      .description(
        "Make an access key. Without --bucket it holds every bucket (*); without --allow it may read and list. The secret is printed only this once: store it.",
      )
      .addOption(spmOption())
      .option("--bucket <pattern>", "a bucket, a prefix and * (logs-*), or *; repeat for more (default: *)", (value: string, previous: string[] = []) => [...previous, value])
      .option("--allow <actions>", "comma-separated: read, list, write, delete (default: read,list)")
      .option("--admin", "may also manage the VSS: keys, drain, undrain, remove, status, audit")
      .option("--json", 'print { "accessKey", "secretKey", "grants", "admin" }')
      .action(action(async (flags) => (await import("./commands/keys.ts")).keyCreateCommand(flags))),
    [
      "mictlanx key create --bucket photos                      # read and list photos",
      "mictlanx key create --bucket photos --bucket 'thumbs-*' --allow read,list,write",
      "mictlanx key create --bucket 'logs-*' --allow write      # an uploader that cannot read back",
      "mictlanx key create --allow read,list,write,delete --admin --json > ops-key.json",
    ],
    "0 ok, 1 failure, 2 usage (a bad pattern or action)",
  );
  example(
    keyCommand
      .command("ls")
      .summary("list the keys: id, grants, admin, revoked (never a secret)")
      .addOption(spmOption())
      .option("--json", 'print [{ "accessKey", "grants", "admin", "createdMs", "revoked" }]')
      .action(action(async (flags) => (await import("./commands/keys.ts")).keyListCommand(flags))),
    ["mictlanx key ls", "mictlanx key ls --json | jq '.[] | select(.revoked | not) | .accessKey'"],
  );
  example(
    keyCommand
      .command("revoke")
      .summary("revoke a key at once, for good")
      .description("Revoke an access key: routers stop taking it within seconds. Revoking a key already revoked is not an error; it stays listed, marked revoked.")
      .argument("<id>", "the key's id (MX…, see mictlanx key ls)")
      .addOption(spmOption())
      .option("--json", "print JSON")
      .action(action(async (id, flags) => (await import("./commands/keys.ts")).keyRevokeCommand(id, flags))),
    ["mictlanx key revoke MXA2B3C4D5E6F7G2H3I4"],
    "0 ok, 1 failure, 2 usage (not a key id), 4 not found (no such key)",
  );

  example(
    program
      .command("audit")
      .summary("who did what: admin operations and deletes, newest first")
      .description(
        "The SPM's audit log: key create and revoke, peer drain, undrain and remove, and every delete (ball, bulk, bucket), each with its time, access key, address and outcome. " +
          `It keeps the newest ${limits.auditRecordsMax.toLocaleString("en-US")} records.`,
      )
      .addOption(spmOption())
      .option("--limit <n>", "show the newest N records", String(limits.auditShownDefault))
      .option("--json", 'print [{ "seq", "atMs", "accessKey", "remote", "action", "target", "outcome" }]')
      .action(action(async (flags) => (await import("./commands/audit.ts")).auditCommand(flags))),
    ["mictlanx audit", "mictlanx audit --limit 500 --json | jq '.[] | select(.action == \"ball.delete\")'"],
  );

  const catalogCommand = program
    .command("catalog")
    .summary("the SPM's catalog itself: backup, migrate to PostgreSQL")
    .description("Work on the SPM's catalog file directly (not through a running SPM). See docs/formats.md.");
  example(
    catalogCommand
      .command("backup")
      .summary("a consistent copy of a SQLite catalog (with its secrets.key), safe while the SPM runs")
      .description(
        "Copy the SQLite catalog to FILE as of one moment, while the SPM keeps running and writing (SQLite's VACUUM INTO in one read transaction: " +
          "the SPM is never blocked), check the copy, fsync it and rename it into place. The catalog's access-key secrets are sealed under secrets.key, " +
          "which goes to FILE.secrets.key (mode 0600): the backup opens only with it, so keep the two together (and as safe as the live ones). " +
          "A catalog holding keys whose secrets.key is missing or wrong is refused, unless --no-secrets-key says you keep the key elsewhere. " +
          "To restore: stop the SPM, remove DIR/catalog.sqlite-wal and DIR/catalog.sqlite-shm, copy FILE to DIR/catalog.sqlite and FILE.secrets.key to DIR/secrets.key, start it. " +
          "A PostgreSQL catalog is backed up with pg_dump instead (docs/formats.md).",
      )
      .argument("<file>", "where the copy goes (its directory must exist); FILE.secrets.key goes beside it")
      .option("--data-dir <dir>", "the SPM's --data directory (holding catalog.sqlite); default: ./.mictlanx/spm, where mictlanx up keeps it")
      .option("--catalog <sqlite:dir>", "the same as sqlite:DIR; postgres://… is refused with how to use pg_dump")
      .option("--force", "replace FILE and FILE.secrets.key if they exist")
      .option("--no-secrets-key", "do not copy secrets.key (you keep it elsewhere); the backup's access keys open only with that key")
      .option("--json", 'print { "file", "bytes", "schemaVersion", "balls", "buckets", "accessKeys", "secretsKey", "tookMs" }')
      .action(action(async (file, flags) => (await import("./commands/catalog.ts")).catalogBackupCommand(file, flags))),
    [
      "mictlanx catalog backup /backups/catalog-$(date +%F).sqlite                 # the catalog of mictlanx up in ./.mictlanx",
      "mictlanx catalog backup /backups/catalog.sqlite --data-dir /var/lib/mictlanx/spm --force",
      "mictlanx catalog backup /backups/catalog.sqlite --no-secrets-key           # secrets.key is kept in a vault",
    ],
    "0 ok, 1 failure (the catalog unreadable, its secrets.key missing or wrong), 2 usage (a bad flag, FILE exists, a PostgreSQL URL)",
  );
  registerCatalogMigrate(catalogCommand);

  example(
    program
      .command("tui")
      .summary("a live dashboard of the VSS")
      .addOption(spmOption())
      .option("--interval <time>", "how often to refresh", "1s")
      .action(action(async (flags) => (await import("./commands/tui.ts")).runTuiCommand(flags))),
    ["mictlanx tui --spm 127.0.0.1:7200"],
  );

  example(
    program
      .command("bench")
      .summary("measure put/get throughput and latency through the routers")
      .addOption(routerOption())
      .option("--size <size>", "ball size", "4KiB")
      .option("--count <n>", "balls per phase")
      .option("--duration <time>", "run each phase this long instead, e.g. 10s")
      .option("--concurrency <n>", "requests in flight", "16")
      .option("--rf <n>", "replication factor", "2")
      .option("--op <op>", "put (write only), get (write, then report reads), mixed (half reads, half writes) or all (writes, then reads)", "all")
      .option("--chunk-size <size>", "chunk size for puts, 4KiB to 8MiB")
      .option("--keep", "keep the balls it wrote (by default their bucket is deleted at the end)")
      .option("--json", "print one JSON object per phase")
      .addOption(verifyOption())
      .action(action(async (flags) => (await import("./commands/bench.ts")).benchCommand(flags))),
    ["mictlanx bench --size 4KiB --count 20000 --concurrency 16"],
  );

  addCredentialOptions(program);
  return program;
}

/** The roles and commands that are not a VSS's clients (they take --tls-*, make certificates, or read the catalog's file: catalog backup). */
const notClients = new Set(["spm", "peer", "router", "up", "certs", "init", "issue", "backup"]);

/**
 * Every command that talks to a VSS as a client takes the same credentials, found in this order:
 * these flags, MICTLANX_ACCESS_KEY / MICTLANX_SECRET_KEY / MICTLANX_CA, --credentials FILE or
 * MICTLANX_CREDENTIALS, then ./.mictlanx/credentials.json (src/client/credentials.ts).
 */
function addCredentialOptions(command: Command): void {
  for (const sub of command.commands) {
    addCredentialOptions(sub);
    if (notClients.has(sub.name()) || sub.commands.length > 0) continue;
    sub
      .option("--access-key <id>", "access key id (default: MICTLANX_ACCESS_KEY, else --credentials, else ./.mictlanx/credentials.json)")
      .option("--secret-key <secret>", "its secret (default: MICTLANX_SECRET_KEY; prefer the environment or a file: flags show in ps)")
      .option("--ca <file>", "the VSS's CA certificate, ca.crt (default: MICTLANX_CA, else the credentials file's)")
      .option("--credentials <file>", "a JSON file { accessKey, secretKey, ca } (default: MICTLANX_CREDENTIALS, else ./.mictlanx/credentials.json)");
  }
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  // Usage errors exit 2 (commander would use 1); help and --version exit 0.
  program.exitOverride();
  for (const command of program.commands) command.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      const ok = error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help";
      process.exit(ok ? 0 : 2);
    }
    throw error;
  }
}

