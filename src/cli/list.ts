import { timestampDate, timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import type { Certificate } from "../gen/certgate/v1/certificate_store_pb.js";
import { displayText } from "../core/display-text.js";
import { CliError, defineCommand, expectPositionals, ExitCode, json, oneLine, usageError } from "./common.js";
import { durationHelp, parseDuration } from "./duration.js";
import { formatTime, storedCertificateJson, table, validityNote } from "./format.js";
import { connectStore, storeErrorReason, storeFlags, storeFlagsHelp } from "./store-client.js";

const help = `Usage: certgate list [--expiring-within DURATION] [store options]

Lists the certificates kept by the certificate store service, ordered by id:
id, expiry and subject. Use certgate get ID for the thumbprints and labels.

With --expiring-within, lists only the certificates whose validity ends
within that time from now, expired ones included, soonest first: the client
certificates to renew before their API calls start being refused.

Options:
      --expiring-within DURATION
                        Only certificates expiring within DURATION,
                        ${durationHelp}
${storeFlagsHelp}
  -h, --help        Show this help

Examples:
  certgate list --store https://localhost:8444 --cert reader.pem --key reader-key.pem --ca ca.pem
  certgate list --json | jq -r '.certificates[].certificateId'
  certgate list --expiring-within 30d
`;

// The largest page the service serves: fewer round trips for big stores.
const pageSize = 1000;

/**
 * listCommand is `certgate list`: every stored certificate, following
 * ListCertificates pages to the end.
 */
export const listCommand = defineCommand(
  {
    name: "list",
    help,
    options: { ...storeFlags, "expiring-within": { type: "string" } },
  },
  async ({ values, positionals }, io) => {
    expectPositionals("list", positionals, "", { min: 0, max: 0 });
    const within = values["expiring-within"];
    const withinMs = within === undefined ? undefined : parseDuration(within);
    if (within !== undefined && withinMs === undefined) {
      const problem = `${within.startsWith("-") ? "a duration cannot be negative; " : ""}give ${durationHelp}`;
      throw usageError("list", `invalid --expiring-within ${JSON.stringify(within)}: ${problem}`);
    }
    const expiresBefore = withinMs === undefined ? undefined : timestampFromMs(Date.now() + withinMs);
    const store = await connectStore("list", values, io);
    const certificates: Certificate[] = [];
    let pageToken = "";
    try {
      do {
        const page = await store.client.listCertificates({ pageSize, pageToken, expiresBefore }, store.callOptions);
        certificates.push(...page.certificates);
        if (page.nextPageToken !== "" && page.nextPageToken === pageToken) {
          throw new CliError("list: the store returned the same page token twice");
        }
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
    } catch (error) {
      if (error instanceof CliError) {
        throw error;
      }
      throw new CliError(`list: ${storeErrorReason(error, store.url)}`, undefined, { cause: error });
    }
    if (expiresBefore !== undefined) {
      // Soonest first; ties by id, so that the order is stable.
      certificates.sort((a, b) => expiryMs(a) - expiryMs(b) || (a.certificateId < b.certificateId ? -1 : 1));
    }
    if (values.json === true) {
      io.stdout(json({ certificates: certificates.map((c) => storedCertificateJson(c, { der: false })) }));
      return ExitCode.ok;
    }
    if (certificates.length === 0) {
      io.stdout(within === undefined ? "no certificates stored\n" : `no certificates expire within ${within}\n`);
      return ExitCode.ok;
    }
    const now = Date.now();
    const rows = certificates.map((c) => {
      const notBefore = c.notBefore === undefined ? undefined : timestampDate(c.notBefore);
      const notAfter = c.notAfter === undefined ? undefined : timestampDate(c.notAfter);
      const note = validityNote(notBefore, notAfter, now);
      const left =
        expiresBefore !== undefined && note === "" && notAfter !== undefined
          ? ` (in ${timeLeft(notAfter.getTime() - now)})`
          : note;
      return [displayText(c.certificateId, 64), `${formatTime(notAfter)}${left}`, oneLine(c.subject, 100)];
    });
    // Sorted by expiry, the expiry comes first.
    io.stdout(
      expiresBefore === undefined
        ? table(["ID", "EXPIRES", "SUBJECT"], rows)
        : table(
            ["EXPIRES", "ID", "SUBJECT"],
            rows.map(([id, expires, subject]) => [expires as string, id as string, subject as string]),
          ),
    );
    return ExitCode.ok;
  },
);

// A certificate without a readable expiry (a damaged entry) sorts last.
function expiryMs(certificate: Certificate): number {
  return certificate.notAfter === undefined ? Number.POSITIVE_INFINITY : timestampMs(certificate.notAfter);
}

// How long until an expiry, in its largest whole unit: "5 days", "12 hours".
function timeLeft(ms: number): string {
  const [count, unit] =
    ms >= 86_400_000
      ? [Math.floor(ms / 86_400_000), "day"]
      : ms >= 3_600_000
        ? [Math.floor(ms / 3_600_000), "hour"]
        : [Math.max(1, Math.floor(ms / 60_000)), "minute"];
  return `${count} ${unit}${count === 1 ? "" : "s"}`;
}
