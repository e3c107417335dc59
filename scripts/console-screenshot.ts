// Regenerates docs/console.png, the picture of the console in docs/console.md: a
// store with a few sample certificates, seen by an admin in Debian's
// Chromium at 1280 px. Run with npm run screenshot.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseCertificate } from "../src/core/certificate.js";
import { createDevCa, issueDevCertificate } from "../src/dev-certificates.js";
import { createCertificateStoreServer } from "../src/service/certificate-store-server.js";
import { createMemoryStore } from "../src/stores/memory-store.js";
import { browserContext, launchBrowser } from "../test/support/browser.js";
import { buildConsole } from "./build-console.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const day = 86_400_000;
const out = process.argv[2] ?? join(root, "docs", "console.png");

const consoleDir = await mkdtemp(join(tmpdir(), "certgate-console-"));
await buildConsole(consoleDir);
const ca = await createDevCa({ commonName: "Contoso Devices CA" });
const server = await issueDevCertificate(ca, {
  commonName: "localhost",
  ipAddresses: ["127.0.0.1"],
  usages: ["server"],
});
const admin = await issueDevCertificate(ca, { commonName: "operator", usages: ["client"] });
const store = createMemoryStore();
const now = Date.now();
const samples: [string, string, number, Record<string, string>][] = [
  ["billing-batch", "billing batch job", -12, { team: "billing" }],
  ["device-0042", "device-0042.fleet.contoso.example", 9, { fleet: "north" }],
  ["payments-api", "payments-api.contoso.example", 26, { team: "payments", env: "prod" }],
  ["device-0107", "device-0107.fleet.contoso.example", 75, { fleet: "south" }],
  ["reporting", "reporting.contoso.example", 190, { team: "finance" }],
  ["partner-acme", "api-client.acme.example", 340, { partner: "acme" }],
];
for (const [id, commonName, days, labels] of samples) {
  const cert = await issueDevCertificate(ca, {
    commonName,
    subjectSuffix: "O=Contoso, C=US",
    notBefore: new Date(now - 300 * day),
    notAfter: new Date(now + days * day),
    usages: ["client"],
  });
  await store.put(id, cert.der, { labels });
}
const running = createCertificateStoreServer({
  store,
  cert: server.cert,
  key: server.key,
  access: { admin: { thumbprints: [parseCertificate(admin.der).sha256] } },
  console: { directory: consoleDir },
});
const { url } = await running.listen(0, "127.0.0.1");
const browser = await launchBrowser();
try {
  const context = await browserContext(browser, url, admin, 1280);
  const page = await context.newPage();
  await page.setViewportSize({ width: 1280, height: 430 });
  await page.goto(`${url}/#/certificates`);
  await page.getByRole("link", { name: "partner-acme", exact: true }).waitFor();
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await running.close();
  await rm(consoleDir, { recursive: true, force: true });
}
