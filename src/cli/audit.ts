import { toJson } from "@bufbuild/protobuf";
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { AuditEventSchema, type AuditEvent } from "../gen/certgate/v1/certificate_store_pb.js";
import { displayText } from "../core/display-text.js";
import { resolve } from "node:path";
import { verifyAuditTrail, type AuditTrailReport } from "../stores/directory/audit-verify.js";
import { auditKeyFileHelp, readAuditKeyFile } from "./audit-key.js";
import { fileErrorMessage } from "./certificate-files.js";
import {
  CliError,
  type CliIo,
  defineCommand,
  expectPositionals,
  ExitCode,
  json,
  oneLine,
  usageError,
} from "./common.js";
import { durationHelp, parseDuration } from "./duration.js";
import { formatTime, table } from "./format.js";
import { connectStore, storeErrorReason, storeFlags, storeFlagsHelp } from "./store-client.js";

const help = `Usage: certgate audit [--id ID] [--since DURATION] [store options]
       certgate audit --verify [--data-dir DIR] [--audit-key-file FILE]

Prints the store's audit trail, oldest first: every certificate created or
deleted, and every refused or failed attempt (a reader or an unknown
certificate trying to write, an invalid upload, a taken id), with the time,
the caller's client certificate (subject and SHA-256) and the result.

With --verify, checks the audit trail files of a data folder instead (on the
machine that holds it; serve may keep running): every record's digest, the
hash chain that links each record to the one before it, and the sequence
numbers. Prints the first break and every gap, and exits 1 when it found any.

Options:
      --id ID           Only events naming this certificate id
      --since DURATION  Only events within DURATION before now,
                        ${durationHelp}
      --verify          Check the trail files instead of listing events
      --data-dir DIR    With --verify: the data folder. By default,
                        .certgate/store
${auditKeyFileHelp.replace(/^ {6}/, "      ").replace(/\n {27}/g, "\n                        ")}
                        With --verify: the key serve was given.
${storeFlagsHelp}
  -h, --help        Show this help

Examples:
  certgate audit --since 24h
  certgate audit --id alice --json | jq '.events[] | select(.result != "ok")'
  certgate audit --verify --data-dir /var/lib/certgate --audit-key-file /etc/certgate/audit.key
`;

const pageSize = 1000;

/**
 * auditCommand is `certgate audit`: ListAuditEvents, following the pages to
 * the end.
 */
export const auditCommand = defineCommand(
  {
    name: "audit",
    help,
    options: {
      ...storeFlags,
      id: { type: "string" },
      since: { type: "string" },
      verify: { type: "boolean" },
      "data-dir": { type: "string" },
      "audit-key-file": { type: "string" },
    },
  },
  async ({ values, positionals }, io) => {
    expectPositionals("audit", positionals, "", { min: 0, max: 0 });
    if (values.verify === true) {
      if (values.id !== undefined || values.since !== undefined) {
        throw usageError("audit", "--verify checks the whole trail: --id and --since do not apply");
      }
      return verifyTrail(values, io);
    }
    if (values["data-dir"] !== undefined || values["audit-key-file"] !== undefined) {
      throw usageError("audit", "--data-dir and --audit-key-file go with --verify");
    }
    const since = values.since;
    const sinceMs = since === undefined ? undefined : parseDuration(since);
    if (since !== undefined && sinceMs === undefined) {
      throw usageError("audit", `invalid --since ${JSON.stringify(since)}: give ${durationHelp}`);
    }
    if (values.id === "") {
      throw usageError("audit", "--id needs a certificate id");
    }
    const startTime = sinceMs === undefined ? undefined : timestampFromMs(Date.now() - sinceMs);
    const store = await connectStore("audit", values, io);
    const events: AuditEvent[] = [];
    let skipped = 0;
    let pageToken = "";
    try {
      do {
        const page = await store.client.listAuditEvents(
          { pageSize, pageToken, certificateId: values.id ?? "", startTime },
          store.callOptions,
        );
        events.push(...page.events);
        skipped += page.damagedRecordsSkipped;
        if (page.nextPageToken !== "" && page.nextPageToken === pageToken) {
          throw new CliError("audit: the store returned the same page token twice");
        }
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
    } catch (error) {
      if (error instanceof CliError) throw error;
      throw new CliError(`audit: ${storeErrorReason(error, store.url)}`, undefined, { cause: error });
    }
    if (skipped > 0) {
      io.stderr(
        `certgate: audit: the store skipped ${skipped} damaged record${skipped === 1 ? "" : "s"} (edited or torn); run certgate audit --verify on its data folder\n`,
      );
    }
    if (values.json === true) {
      io.stdout(json({ events: events.map((e) => toJson(AuditEventSchema, e)), damagedRecordsSkipped: skipped }));
      return ExitCode.ok;
    }
    if (events.length === 0) {
      io.stdout(since === undefined ? "no audit events\n" : `no audit events within ${since}\n`);
      return ExitCode.ok;
    }
    const rows = events.map((e) => [
      formatTime(e.time === undefined ? undefined : timestampDate(e.time)),
      displayText(e.action, 16),
      displayText(e.code === "" ? e.result : `${e.result} (${e.code})`, 40),
      e.certificateId === "" ? "-" : displayText(e.certificateId, 64),
      e.actorSha256Thumbprint === ""
        ? "-"
        : `${oneLine(e.actorSubject, 60)} ${displayText(e.actorSha256Thumbprint.slice(0, 16))}…`,
      e.reason === "" ? "" : oneLine(e.reason, 200),
    ]);
    io.stdout(table(["TIME", "ACTION", "RESULT", "ID", "ACTOR", "REASON"], rows));
    return ExitCode.ok;
  },
);

const maxProblemsShown = 50;

async function verifyTrail(
  values: { "data-dir"?: string; "audit-key-file"?: string; json?: boolean },
  io: CliIo,
): Promise<number> {
  const directory = resolve(io.cwd, values["data-dir"] ?? ".certgate/store");
  const keyFile = values["audit-key-file"];
  const key = keyFile === undefined ? undefined : await readAuditKeyFile("audit", keyFile, io.cwd);
  let report: AuditTrailReport;
  try {
    report = await verifyAuditTrail({ directory, ...(key === undefined ? {} : { key }) });
  } catch (error) {
    throw new CliError(`audit: --data-dir ${directory}: ${fileErrorMessage(error)}`, undefined, { cause: error });
  }
  const failed = report.problems.some((p) => p.kind !== "unchecked");
  if (values.json === true) {
    io.stdout(json({ ok: !failed, ...report }));
    return failed ? ExitCode.failure : ExitCode.ok;
  }
  if (report.files.length === 0) {
    throw new CliError(`audit: --data-dir ${directory}: no audit trail files`);
  }
  const range = report.to === 0 ? "" : `, sequence numbers ${report.from} to ${report.to}`;
  const unchained = report.unchained === 0 ? "" : ` (${report.unchained} written before the hash chain)`;
  io.stdout(`read ${report.records} records${unchained} in ${report.files.length} files${range}\n`);
  const shown = report.problems.slice(0, maxProblemsShown);
  const firstBreak = shown.findIndex((p) => p.kind !== "gap" && p.kind !== "unchecked");
  for (const [i, problem] of shown.entries()) {
    io.stdout(`${i === firstBreak ? "first break: " : `${problem.kind}: `}${displayText(problem.message, 1000)}\n`);
  }
  if (report.problems.length > shown.length) {
    io.stdout(`and ${report.problems.length - shown.length} more problems\n`);
  }
  if (!failed) io.stdout("the trail is intact: no damaged record, no break in the chain, no gap\n");
  return failed ? ExitCode.failure : ExitCode.ok;
}
