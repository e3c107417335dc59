import { CliError, defineCommand, expectPositionals, ExitCode, json } from "./common.js";
import { connectStore, storeErrorReason, storeFlags, storeFlagsHelp } from "./store-client.js";

const help = `Usage: certgate delete ID [store options]

Deletes one stored certificate: API servers that use the store refuse it
from the moment the deletion reaches them (within a second for a remote
store in mirror mode), also on connections that are already open.

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
    try {
      await store.client.deleteCertificate({ certificateId: id }, store.callOptions);
    } catch (error) {
      throw new CliError(`delete ${id}: ${storeErrorReason(error, store.url, id)}`, undefined, { cause: error });
    }
    io.stdout(values.json === true ? json({ certificateId: id, deleted: true }) : `deleted ${id}\n`);
    return ExitCode.ok;
  },
);
