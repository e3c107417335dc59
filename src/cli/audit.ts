import { toJson } from "@bufbuild/protobuf";
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { AuditEventSchema, type AuditEvent } from "../gen/certgate/v1/certificate_store_pb.js";
import { displayText } from "../core/display-text.js";
import { CliError, defineCommand, expectPositionals, ExitCode, json, oneLine, usageError } from "./common.js";
import { durationHelp, parseDuration } from "./duration.js";
import { formatTime, table } from "./format.js";
import { connectStore, storeErrorReason, storeFlags, storeFlagsHelp } from "./store-client.js";

const help = `Usage: certgate audit [--id ID] [--since DURATION] [store options]

Prints the store's audit trail, oldest first: every certificate created or
deleted, and every refused or failed attempt (a reader or an unknown
certificate trying to write, an invalid upload, a taken id), with the time,
the caller's client certificate (subject and SHA-256) and the result.

Options:
      --id ID           Only events naming this certificate id
      --since DURATION  Only events within DURATION before now,
                        ${durationHelp}
${storeFlagsHelp}
  -h, --help        Show this help

Examples:
  certgate audit --since 24h
  certgate audit --id alice --json | jq '.events[] | select(.result != "ok")'
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
    options: { ...storeFlags, id: { type: "string" }, since: { type: "string" } },
  },
  async ({ values, positionals }, io) => {
    expectPositionals("audit", positionals, "", { min: 0, max: 0 });
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
    let pageToken = "";
    try {
      do {
        const page = await store.client.listAuditEvents(
          { pageSize, pageToken, certificateId: values.id ?? "", startTime },
          store.callOptions,
        );
        events.push(...page.events);
        if (page.nextPageToken !== "" && page.nextPageToken === pageToken) {
          throw new CliError("audit: the store returned the same page token twice");
        }
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
    } catch (error) {
      if (error instanceof CliError) throw error;
      throw new CliError(`audit: ${storeErrorReason(error, store.url)}`, undefined, { cause: error });
    }
    if (values.json === true) {
      io.stdout(json({ events: events.map((e) => toJson(AuditEventSchema, e)) }));
      return ExitCode.ok;
    }
    if (events.length === 0) {
      io.stdout(since === undefined ? "no audit events\n" : `no audit events within ${since}\n`);
      return ExitCode.ok;
    }
    const rows = events.map((e) => [
      formatTime(e.time === undefined ? undefined : timestampDate(e.time)),
      e.action,
      e.code === "" ? e.result : `${e.result} (${e.code})`,
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
