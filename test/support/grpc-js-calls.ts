import * as grpc from "@grpc/grpc-js";
import { fromBinary } from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { AnySchema, anyUnpack } from "@bufbuild/protobuf/wkt";
import { ClientCertificateErrorSchema } from "../../src/gen/certgate/v1/errors_pb.js";
import type { EchoBidiRawClient } from "./grpc-js-echo-server.js";

/** The four call kinds of the echo service, through a grpc-js client. */
export type CallKind = "unary" | "server-streaming" | "client-streaming" | "bidi";
export const callKinds: readonly CallKind[] = ["unary", "server-streaming", "client-streaming", "bidi"];

/**
 * callEcho makes one call of `kind` sending `text` (twice for the streaming
 * requests) and resolves with the response texts, joined by `|`; it rejects
 * with the grpc-js `ServiceError`.
 */
export function callEcho(
  client: EchoBidiRawClient,
  kind: CallKind,
  text: string,
  metadata = new grpc.Metadata(),
): Promise<string> {
  return new Promise((resolve, reject) => {
    const done = (error: grpc.ServiceError | null, response?: { text: string }) =>
      error === null ? resolve(response?.text ?? "") : reject(error);
    switch (kind) {
      case "unary":
        client.echo({ text }, metadata, done);
        return;
      case "server-streaming": {
        const texts: string[] = [];
        const call = client.echoServerStream({ text, count: 2 }, metadata);
        call.on("data", (m) => texts.push(m.text));
        call.on("error", reject);
        call.on("end", () => resolve(texts.join("|")));
        return;
      }
      case "client-streaming": {
        const call = (
          client.echoClientStream as unknown as (
            m: grpc.Metadata,
            cb: typeof done,
          ) => grpc.ClientWritableStream<unknown>
        )(metadata, done);
        call.write({ text });
        call.write({ text });
        call.end();
        return;
      }
      case "bidi": {
        const texts: string[] = [];
        const call = client.echoBidi(metadata);
        call.on("data", (m) => texts.push(m.text));
        call.on("error", reject);
        call.on("end", () => resolve(texts.join("|")));
        call.write({ text });
        call.write({ text });
        call.end();
        return;
      }
    }
  });
}

/** RefusalSeen is what a grpc-js client sees of a refused call. */
export interface RefusalSeen {
  code: number;
  details: string;
  /** The ClientCertificateError detail decoded from grpc-status-details-bin. */
  reason: string | undefined;
  procedure: string | undefined;
  /** The code inside google.rpc.Status, which must equal `code`. */
  statusCode: number | undefined;
}

/** refusalOf awaits a call that must fail and decodes its status; it throws when the call succeeds. */
export async function refusalOf(call: Promise<unknown>): Promise<RefusalSeen> {
  let result: unknown;
  try {
    result = await call;
  } catch (e) {
    const error = e as grpc.ServiceError;
    const bin = error.metadata?.get("grpc-status-details-bin")[0];
    const decoded = bin === undefined ? undefined : decodeStatus(bin as Buffer);
    return {
      code: error.code,
      details: error.details,
      reason: decoded?.detail?.reason,
      procedure: decoded?.detail?.procedure,
      statusCode: decoded?.code,
    };
  }
  throw new Error(`expected the call to fail, it succeeded with ${JSON.stringify(result)}`);
}

// google.rpc.Status { int32 code = 1; string message = 2; repeated Any details = 3; }
function decodeStatus(bytes: Uint8Array) {
  const reader = new BinaryReader(bytes);
  let code: number | undefined;
  let detail: { reason: string; procedure: string } | undefined;
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1) code = reader.int32();
    else if (field === 3) {
      const any = fromBinary(AnySchema, reader.bytes());
      detail = anyUnpack(any, ClientCertificateErrorSchema);
    } else reader.skip(wireType);
  }
  return { code, detail };
}
