// Runs certgate as if @connectrpc/connect-node were not installed (it is an
// optional peer dependency): a module hook makes every import of it fail the
// way a missing package does. Prints one line per check; frameworks.test.ts
// compares them.
import { hidePackages } from "./hide-packages.mjs";

hidePackages(["@connectrpc/connect-node"]);

// The hook works: the package is gone for this process.
const hidden = await import("@connectrpc/connect-node").then(
  () => "imported",
  (error) => error.code,
);
console.log(`connect-node hidden: ${hidden}`);

const certgate = await import("certgate");
const { createDevCa, issueDevCertificate } = await import("certgate/dev");
const store = certgate.createMemoryStore();
const parts = [
  typeof certgate.createClientCertGate({ store }) === "function" && "gate",
  typeof certgate.createClientCertInterceptor({ store }) === "function" && "interceptor",
  typeof certgate.peerCertificateContextValues === "function" && "context values",
].filter(Boolean);
console.log(`certgate loaded: ${parts.join(", ")}`);

const ca = await createDevCa();
const server = await issueDevCertificate(ca, { commonName: "localhost", usages: ["server"] });
const admin = await issueDevCertificate(ca, { commonName: "admin", usages: ["client"] });
const storeServer = certgate.createCertificateStoreServer({
  store,
  cert: server.cert,
  key: server.key,
  access: { admin: { thumbprints: [certgate.parseCertificate(admin.cert).sha256] } },
});
try {
  const { url } = await storeServer.listen();
  console.log(`store server: listening on ${url}`);
} catch (error) {
  console.log(`store server: ${error.message}`);
} finally {
  await storeServer.close();
  await store.close();
}
