import { create, toBinary } from "@bufbuild/protobuf";
import { AnySchema, anyPack } from "@bufbuild/protobuf/wkt";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { Metadata, type ServerInterceptingCallInterface } from "@grpc/grpc-js";
import type { EnforcedRefusal } from "../core/enforcement.js";
import { ClientCertificateErrorSchema } from "../gen/certgate/v1/errors_pb.js";

/** PartialStatusObject is the status grpc-js sends (not exported by name in 1.14). */
export type PartialStatusObject = Parameters<ServerInterceptingCallInterface["sendStatus"]>[0];

/**
 * GrpcStatusOf turns refusals into the grpc-js status a client sees.
 */
export type GrpcStatusOf = (refusal: EnforcedRefusal) => PartialStatusObject;

// Procedures are those the server registered (grpc-js answers others before
// any interceptor runs) and reasons are few, so the statuses are too; the
// bound only guards against a store inventing reasons.
const maxCached = 4096;

/**
 * createGrpcStatusOf returns the status of a refusal as Connect's gRPC
 * protocol sends it: code 16 (`UNAUTHENTICATED`) or 7 (`PERMISSION_DENIED`),
 * the refusal's message, and the `certgate.v1.ClientCertificateError`
 * detail in `grpc-status-details-bin` (a `google.rpc.Status` holding it as an
 * `Any`). Statuses are built once per code, reason and procedure: grpc-js
 * copies the metadata it sends, so refusing costs no encoding.
 */
export function createGrpcStatusOf(): GrpcStatusOf {
  const cache = new Map<string, PartialStatusObject>();
  return ({ code, message, detail }) => {
    const key = `${code} ${detail.reason} ${message} ${detail.procedure}`;
    let status = cache.get(key);
    if (status === undefined) {
      const metadata = new Metadata();
      metadata.set("grpc-status-details-bin", statusDetails(code, message, detail));
      status = Object.freeze({ code, details: message, metadata });
      if (cache.size >= maxCached) cache.clear();
      cache.set(key, status);
    }
    return status;
  };
}

// google.rpc.Status { int32 code = 1; string message = 2; repeated Any details = 3; }
function statusDetails(code: number, message: string, detail: EnforcedRefusal["detail"]): Buffer {
  const any = anyPack(ClientCertificateErrorSchema, create(ClientCertificateErrorSchema, { ...detail }));
  const writer = new BinaryWriter();
  writer.tag(1, WireType.Varint).int32(code);
  writer.tag(2, WireType.LengthDelimited).string(message);
  writer.tag(3, WireType.LengthDelimited).bytes(toBinary(AnySchema, any));
  return Buffer.from(writer.finish());
}
