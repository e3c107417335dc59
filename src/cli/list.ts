import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Certificate } from "../gen/certgate/v1/certificate_store_pb.js";
import { CliError, defineCommand, expectPositionals, ExitCode, json, oneLine } from "./common.js";
import { formatTime, storedCertificateJson, table, validityNote } from "./format.js";
import { connectStore, storeErrorReason, storeFlags, storeFlagsHelp } from "./store-client.js";

const help = `Usage: certgate list [store options]

Lists the certificates kept by the certificate store service, ordered by id:
id, subject and expiry. Use certgate get ID for the thumbprints and labels.

Options:
${storeFlagsHelp}
  -h, --help        Show this help

Examples:
  certgate list --store https://localhost:8444 --cert reader.pem --key reader-key.pem --ca ca.pem
  certgate list --json | jq -r '.certificates[].certificateId'
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
    options: { ...storeFlags },
  },
  async ({ values, positionals }, io) => {
    expectPositionals("list", positionals, "", { min: 0, max: 0 });
    const store = await connectStore("list", values, io);
    const certificates: Certificate[] = [];
    let pageToken = "";
    try {
      do {
        const page = await store.client.listCertificates({ pageSize, pageToken }, store.callOptions);
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
    if (values.json === true) {
      io.stdout(json({ certificates: certificates.map((c) => storedCertificateJson(c, { der: false })) }));
      return ExitCode.ok;
    }
    if (certificates.length === 0) {
      io.stdout("no certificates stored\n");
      return ExitCode.ok;
    }
    const rows = certificates.map((c) => {
      const notBefore = c.notBefore === undefined ? undefined : timestampDate(c.notBefore);
      const notAfter = c.notAfter === undefined ? undefined : timestampDate(c.notAfter);
      return [c.certificateId, `${formatTime(notAfter)}${validityNote(notBefore, notAfter)}`, oneLine(c.subject)];
    });
    io.stdout(table(["ID", "EXPIRES", "SUBJECT"], rows));
    return ExitCode.ok;
  },
);
