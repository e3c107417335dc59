import type { Code as ConnectCode } from "@connectrpc/connect";

/**
 * Code holds the status codes a refusal carries, without loading Connect:
 * their numbers are gRPC's, which Connect's `Code` shares, so the grpc-js
 * adapter sends them as they are.
 */
export const Code = {
  PermissionDenied: 7 as ConnectCode.PermissionDenied,
  Unauthenticated: 16 as ConnectCode.Unauthenticated,
} as const;

/** Code is Connect's `Code` as a type (erased at run time). */
export type Code = ConnectCode;
