import { displayText } from "../core/display-text.js";
import { CliError, defineCommand, expectPositionals, ExitCode, json } from "./common.js";
import { connectStore, storeErrorReason, storeFlags, storeFlagsHelp } from "./store-client.js";

const help = `Usage: certgate delete ID [store options]

Deletes one stored certificate: API servers that use the store refuse it
from the moment the deletion reaches them (within a second for a remote
store in mirror mode), also on connections that are already open. When the
same certificate is also stored under another id, it stays admitted, and
delete says so ("still admitted as ID").

Options:
${storeFlagsHelp}
  -h, --help        Show this help

Example:
  certgate delete alice --store https://localhost:8444 --cert admin.pem --key admin-key.pem --ca ca.pem
`;

/**
 * deleteCommand is `certgate delete ID`: DeleteCertificate.
 */
export const deleteCommand = defineCommand(
  {
    name: "delete",
    help,
    options: { ...storeFlags },
  },
  async ({ values, positionals }, io) => {
    expectPositionals("delete", positionals, "ID (see certgate list)", { min: 1, max: 1 });
    const id = positionals[0]!;
    const store = await connectStore("delete", values, io);
    // The thumbprint, read first, tells afterwards whether the same
    // certificate is still admitted under another id.
    const sha256 = await store.client.getCertificate({ certificateId: id }, store.callOptions).then(
      (r) => r.certificate?.sha256Thumbprint,
      () => undefined,
    );
    try {
      await store.client.deleteCertificate({ certificateId: id }, store.callOptions);
    } catch (error) {
      throw new CliError(`delete ${id}: ${storeErrorReason(error, store.url, id)}`, undefined, { cause: error });
    }
    const stillAs =
      sha256 === undefined || sha256 === ""
        ? undefined
        : await store.client
            .verifyCertificate({ subject: { case: "thumbprint", value: sha256 } }, store.callOptions)
            .then(
              (r) => (r.admitted ? r.certificate?.certificateId : undefined),
              () => undefined,
            );
    if (values.json === true) {
      io.stdout(json({ certificateId: id, deleted: true, ...(stillAs ? { stillAdmittedAs: stillAs } : {}) }));
    } else {
      io.stdout(
        stillAs
          ? `deleted ${displayText(id)}; the same certificate is still admitted as ${displayText(stillAs)}\n`
          : `deleted ${displayText(id)}\n`,
      );
    }
    return ExitCode.ok;
  },
);
