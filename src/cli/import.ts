import { createReadStream } from "node:fs";
import { opendir, readFile, stat } from "node:fs/promises";
import { basename, extname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { Code, ConnectError } from "@connectrpc/connect";
import { decodePemOrDer } from "../core/pem-der.js";
import { isValidCertificateId } from "../core/store.js";
import { CertificateBatchErrorSchema } from "../gen/certgate/v1/certificate_store_pb.js";
import { CliError, defineCommand, expectPositionals, ExitCode, json, usageError } from "./common.js";
import { fileErrorMessage } from "./certificate-files.js";
import { connectStore, storeErrorReason, storeFlags, storeFlagsHelp, type StoreConnection } from "./store-client.js";
import { parseLabels } from "./upload.js";

const help = `Usage: certgate import (--from-dir DIR | --from-pem FILE) [--id-from name]
                      [--label KEY=VALUE]... [store options]

Loads many certificates into the certificate store service, in batches of
up to 1000 (CreateCertificates: each batch is stored whole or not at all).
The input is read as it is sent, never held whole, so a million
certificates take no more memory than a few batches.

It can run again after an interruption: certificates whose id is already
stored are skipped and counted ("skipped"), so a rerun stores each missing
certificate once. Refused certificates (not a certificate, bad labels) are
reported on standard error and the rest of their batch is sent again.
Private keys are never sent: a file or PEM block holding one is refused.

Options:
      --from-dir DIR        Every file of DIR (not its subfolders), each one
                            certificate, PEM or DER.
      --from-pem FILE       A PEM file of many certificates ("-" for standard
                            input); other PEM blocks are refused.
      --id-from name        Store each certificate of --from-dir under its
                            file name without the extension (device-42.pem:
                            device-42). By default, the store's default id,
                            the SHA-256 thumbprint.
      --label KEY=VALUE     A label to keep with every certificate (repeatable)
      --batch-size N        Certificates per call, 1 to 1000. By default, 1000.
${storeFlagsHelp}
  -h, --help                Show this help

Example:
  certgate import --from-dir ./devices --id-from name --label fleet=sensors \\
    --store https://localhost:8444 --cert admin.pem --key admin-key.pem --ca ca.pem

Exit status: 0 when every certificate was stored or already there, 1 when
any was refused, 2 for a wrong command line.
`;

/** One certificate to send, and where it came from (for messages). */
interface Item {
  readonly source: string;
  readonly certificateId: string;
  readonly certificate: Uint8Array;
}

interface Counts {
  stored: number;
  skipped: number;
  refused: number;
}

// Two batches in flight: one is parsed and sent while the store writes the other.
const inFlight = 2;
const maxFileBytes = 1024 * 1024;

/**
 * importCommand is `certgate import`: many certificates, in batches of
 * CreateCertificates.
 */
export const importCommand = defineCommand(
  {
    name: "import",
    help,
    options: {
      ...storeFlags,
      "from-dir": { type: "string" },
      "from-pem": { type: "string" },
      "id-from": { type: "string" },
      "batch-size": { type: "string" },
      label: { type: "string", multiple: true },
    },
  },
  async ({ values, positionals }, io) => {
    expectPositionals("import", positionals, "", { min: 0, max: 0 });
    const fromDir = values["from-dir"];
    const fromPem = values["from-pem"];
    if ((fromDir === undefined) === (fromPem === undefined)) {
      throw usageError("import", "give one of --from-dir DIR and --from-pem FILE");
    }
    const idFrom = values["id-from"];
    if (idFrom !== undefined && (idFrom !== "name" || fromDir === undefined)) {
      throw usageError("import", "--id-from takes name, with --from-dir");
    }
    const batchSize = Number(values["batch-size"] ?? 1000);
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1000) {
      throw usageError("import", `--batch-size must be an integer from 1 to 1000, got ${values["batch-size"]}`);
    }
    const labels = parseLabels(values.label ?? []);
    const refuse = (source: string, reason: string) => {
      counts.refused++;
      io.stderr(`certgate: import ${source}: ${reason}\n`);
    };
    const counts: Counts = { stored: 0, skipped: 0, refused: 0 };
    const items =
      fromDir === undefined
        ? pemItems(fromPem as string, io.cwd, refuse)
        : dirItems(fromDir, io.cwd, idFrom === "name", refuse);
    const store = await connectStore("import", values, io);

    const running = new Set<Promise<void>>();
    let failure: unknown;
    let batch: Item[] = [];
    const flush = async () => {
      const sending = batch;
      batch = [];
      const done = sendBatch(store, sending, labels, counts, refuse).catch((error: unknown) => {
        failure ??= error;
      });
      running.add(done);
      void done.finally(() => running.delete(done));
      if (running.size >= inFlight) await Promise.race(running);
    };
    for await (const item of items) {
      if (failure !== undefined) break;
      batch.push(item);
      if (batch.length === batchSize) await flush();
    }
    if (batch.length > 0 && failure === undefined) await flush();
    await Promise.all(running);
    const summary = `${counts.stored} stored, ${counts.skipped} skipped (already stored), ${counts.refused} refused`;
    if (failure !== undefined) {
      throw new CliError(`import stopped: ${storeErrorReason(failure, store.url)} (${summary}; run it again to go on)`);
    }
    if (values.json === true) io.stdout(json(counts));
    else io.stdout(`certgate import: ${summary}\n`);
    return counts.refused === 0 ? ExitCode.ok : ExitCode.failure;
  },
);

// Sends one batch; refused and already stored items are taken out and the
// rest sent again, until it is stored or empty.
async function sendBatch(
  store: StoreConnection,
  items: Item[],
  labels: Record<string, string>,
  counts: Counts,
  refuse: (source: string, reason: string) => void,
): Promise<void> {
  let left = items;
  while (left.length > 0) {
    try {
      const response = await store.client.createCertificates(
        {
          requests: left.map((item) => ({ certificateId: item.certificateId, certificate: item.certificate, labels })),
        },
        store.callOptions,
      );
      counts.stored += response.certificates.length;
      return;
    } catch (error) {
      const connect = ConnectError.from(error);
      const refused = connect.findDetails(CertificateBatchErrorSchema)[0]?.items ?? [];
      if ((connect.code !== Code.AlreadyExists && connect.code !== Code.InvalidArgument) || refused.length === 0) {
        throw error;
      }
      const out = new Set<number>();
      for (const r of refused) {
        const item = left[r.index];
        if (item === undefined) throw error;
        out.add(r.index);
        if (r.code === "already_exists") counts.skipped++;
        else refuse(item.source, r.reason);
      }
      left = left.filter((_, index) => !out.has(index));
    }
  }
}

// The certificates of each file of a folder, one per file, in the order the
// folder lists them.
async function* dirItems(
  dir: string,
  cwd: string,
  idFromName: boolean,
  refuse: (source: string, reason: string) => void,
): AsyncGenerator<Item> {
  const path = resolve(cwd, dir);
  let folder;
  try {
    folder = await opendir(path, { bufferSize: 256 });
  } catch (error) {
    throw new CliError(`--from-dir ${dir}: ${fileErrorMessage(error)}`, undefined, { cause: error });
  }
  for await (const entry of folder) {
    if (!entry.isFile() || entry.name.startsWith(".")) continue;
    const source = join(dir, entry.name);
    let bytes: Buffer;
    try {
      const info = await stat(join(path, entry.name));
      if (info.size > maxFileBytes) {
        refuse(source, `${info.size} bytes is too large for a certificate file`);
        continue;
      }
      bytes = await readFile(join(path, entry.name));
    } catch (error) {
      refuse(source, fileErrorMessage(error));
      continue;
    }
    const decoded = decodePemOrDer(bytes, { privateKeys: "count", otherBlocks: "skip", inspect: false });
    if (decoded.kind === "problem") {
      refuse(source, "not a certificate (PEM or DER)");
      continue;
    }
    if (decoded.privateKeys > 0) {
      refuse(source, "the file holds a private key: not sent (certgate never sends private keys)");
      continue;
    }
    if (decoded.ders.length !== 1) {
      refuse(source, `the file holds ${decoded.ders.length} certificates; give one per file (or use --from-pem)`);
      continue;
    }
    const id = idFromName ? basename(entry.name, extname(entry.name)) : "";
    if (idFromName && !isValidCertificateId(id)) {
      refuse(source, `the file name ${JSON.stringify(id)} is not a certificate id (letters, digits, ".", "_", "-")`);
      continue;
    }
    yield { source, certificateId: id, certificate: decoded.ders[0]! };
  }
}

// The CERTIFICATE blocks of a PEM file, read line by line.
async function* pemItems(
  file: string,
  cwd: string,
  refuse: (source: string, reason: string) => void,
): AsyncGenerator<Item> {
  const input = file === "-" ? process.stdin : createReadStream(resolve(cwd, file));
  const opened = new Promise<void>((ok, fail) => {
    if (file === "-") ok();
    input.once("open", () => ok());
    input.once("error", fail);
  });
  try {
    await opened;
  } catch (error) {
    throw new CliError(`--from-pem ${file}: ${fileErrorMessage(error)}`, undefined, { cause: error });
  }
  const lines = createInterface({ input, crlfDelay: Infinity });
  let block: string[] | undefined;
  let label = "";
  let startLine = 0;
  let lineNo = 0;
  for await (const raw of lines) {
    lineNo++;
    const line = raw.trim();
    const begin = /^-----BEGIN ([A-Z0-9 ]+)-----$/.exec(line);
    if (begin !== null) {
      block = [line];
      label = begin[1]!;
      startLine = lineNo;
      continue;
    }
    if (block === undefined) continue;
    block.push(line);
    if (!line.startsWith("-----END ")) continue;
    const source = `${file}:${startLine}`;
    const text = `${block.join("\n")}\n`;
    block = undefined;
    if (label.includes("PRIVATE KEY")) {
      refuse(source, "a private key: not sent (certgate never sends private keys)");
      continue;
    }
    const decoded = decodePemOrDer(text);
    if (decoded.kind === "problem" || decoded.ders.length !== 1 || label !== "CERTIFICATE") {
      refuse(source, `not a certificate (a ${label} block)`);
      continue;
    }
    yield { source, certificateId: "", certificate: decoded.ders[0]! };
  }
  if (block !== undefined) refuse(`${file}:${startLine}`, `a ${label} block without its END line`);
}
