// `mictlanx catalog migrate --from sqlite:DIR --to postgres://…`: copy a stopped SPM's catalog
// into PostgreSQL and prove the copy (src/catalog/migrate.ts; docs/catalog-postgres.md). The
// lead registers it under the `catalog` command group with registerCatalogMigrate.
import type { Command } from "commander";
import { printable, terminalJson } from "../lib/names.ts";
import { action } from "./run.ts";

export interface CatalogMigrateFlags {
  from: string;
  to: string;
  replace?: boolean;
  secretsKey?: string;
  json?: boolean;
}

export function registerCatalogMigrate(command: Command): void {
  command
    .command("migrate")
    .summary("copy a sqlite catalog into PostgreSQL (its SPM stopped), and check the copy")
    .description(
      "Copy every table of the catalog at --from (sqlite:DIR, the SPM's --data) into the PostgreSQL database at --to, page by page in one transaction, " +
        "then check it: rows per table, the counters, a full recount; a copy that does not match is rolled back. Stop the SPM first. " +
        "Access keys' secrets are copied sealed: every SPM on the new catalog needs DIR/secrets.key. See docs/catalog-postgres.md.",
    )
    .requiredOption("--from <url>", "the catalog to copy: sqlite:DIR")
    .requiredOption("--to <url>", "where to: postgres://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE (an empty database)")
    .option("--replace", "empty a target that already holds a catalog, then copy")
    .option("--secrets-key <file>", "the master key sealing the access keys' secrets (default: DIR/secrets.key of --from)")
    .option("--json", "print what was copied as JSON")
    .addHelpText(
      "after",
      "\nExamples:\n  $ mictlanx catalog migrate --from sqlite:./vss/spm --to postgres://mictlanx@db.internal:5432/mictlanx\n" +
        "  $ PGPASSWORD=… mictlanx catalog migrate --from sqlite:/var/lib/mictlanx/spm --to postgres://mictlanx@127.0.0.1/mictlanx --replace\n" +
        "\nExit codes: 0 copied and checked, 1 failure (nothing kept), 2 usage\n",
    )
    .action(action(async (flags: CatalogMigrateFlags) => catalogMigrateCommand(flags)));
}

export async function catalogMigrateCommand(flags: CatalogMigrateFlags): Promise<void> {
  const { migrateCatalog } = await import("../catalog/migrate.ts");
  const report = await migrateCatalog(flags.from, flags.to, {
    replace: flags.replace === true,
    ...(flags.secretsKey === undefined ? {} : { secretsKeyPath: flags.secretsKey }),
    ...(flags.json ? {} : { progress: (line: string) => process.stderr.write(`copied ${line}\n`) }),
  });
  if (flags.json) {
    process.stdout.write(`${terminalJson(report)}\n`);
    return;
  }
  const rows = report.tables.reduce((sum, table) => sum + table.rows, 0);
  process.stdout.write(
    `copied ${printable(report.from)} to ${printable(report.to)} in ${report.elapsedMs} ms: ${rows} rows in ${report.tables.length} tables, ` +
      `${report.stats.balls} balls, ${report.stats.buckets} buckets, ${report.stats.replicas} replicas; VSS ${report.vssId}; every count checked\n`,
  );
}
