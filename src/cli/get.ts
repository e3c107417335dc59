import { CliError, defineCommand, expectPositionals, ExitCode, json } from "./common.js";
import { fields, pem, storedCertificateJson, storedCertificateRows } from "./format.js";
import { connectStore, storeErrorReason, storeFlags, storeFlagsHelp } from "./store-client.js";

const help = `Usage: certgate get ID [--pem] [store options]

Shows one stored certificate: subject, issuer, serial, validity, SHA-1 and
SHA-256 thumbprints, labels and when it was uploaded.

Options:
      --pem         Print the certificate itself, PEM, instead
${storeFlagsHelp}
  -h, --help        Show this help

Examples:
  certgate get alice
  certgate get alice --pem > alice.pem
`;

/**
 * getCommand is `certgate get ID`: GetCertificate.
 */
export const getCommand = defineCommand(
  {
    name: "get",
    help,
    options: { ...storeFlags, pem: { type: "boolean" } },
  },
  async ({ values, positionals }, io) => {
    expectPositionals("get", positionals, "ID (see certgate list)", { min: 1, max: 1 });
    const id = positionals[0]!;
    const store = await connectStore("get", values, io);
    let certificate;
    try {
      certificate = (await store.client.getCertificate({ certificateId: id }, store.callOptions)).certificate;
    } catch (error) {
      throw new CliError(`get ${id}: ${storeErrorReason(error, store.url, id)}`, undefined, { cause: error });
    }
    if (certificate === undefined) {
      throw new CliError(`get ${id}: the store answered without the certificate`);
    }
    if (values.pem === true) {
      if (certificate.der.length === 0) {
        throw new CliError(`get ${id}: the store answered without the certificate's DER`);
      }
      io.stdout(pem("CERTIFICATE", certificate.der));
    } else if (values.json === true) {
      io.stdout(json(storedCertificateJson(certificate)));
    } else {
      io.stdout(fields(storedCertificateRows(certificate)));
    }
    return ExitCode.ok;
  },
);
