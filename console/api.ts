import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { CertificateStoreService } from "../src/gen/certgate/v1/certificate_store_pb.js";
import { Health } from "../src/gen/grpc/health/v1/health_pb.js";

// The console calls the store it was served from, with the same RPCs as
// every other client; the browser presents the client certificate.
// Every call but the watch has a deadline of 30 s; the watch stays open,
// watched for silence instead (model.ts).
const transport = createConnectTransport({
  baseUrl: location.origin,
  useBinaryFormat: true,
  defaultTimeoutMs: 30_000,
});

/** store is the certificate store service. */
export const store = createClient(CertificateStoreService, transport);

/** health is the gRPC health service of the same server. */
export const health = createClient(Health, transport);

/** Role is what the browser's client certificate may do. */
export type Role = "admin" | "reader";

/** role reads the role the server wrote into the page. */
export function role(): Role {
  const content = document.querySelector('meta[name="certgate-role"]')?.getAttribute("content");
  return content === "admin" ? "admin" : "reader";
}

/** errorText turns an RPC failure into a sentence for people. */
export function errorText(error: unknown): string {
  if (error instanceof Error) return error.message.replace(/^\[[a-z_]+\] /, "");
  return String(error);
}
