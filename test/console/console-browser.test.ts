// The console in a real browser: Debian's Chromium, driven by
// playwright-core, presenting admin, reader or no client certificates with
// Playwright's clientCertificates. One browser per file; each test opens
// its own contexts and closes them.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Browser, BrowserContext, Page, Request } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildConsole } from "../../scripts/build-console.js";
import { createPkcs12 } from "../../src/cli/dev-p12.js";
import { createClientCertInterceptor } from "../../src/connect/client-cert-interceptor.js";
import type { WritableCertificateStore } from "../../src/core/store.js";
import { issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import { EchoService } from "../../src/gen/certgate/example/v1/echo_pb.js";
import { createDirectoryStore } from "../../src/stores/directory-store.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import { createPostgresStore } from "../../src/stores/postgres/postgres-store.js";
import { createRemoteStore } from "../../src/stores/remote-store.js";
import { browserContext, hasChromium, launchBrowser, screenshot } from "../support/browser.js";
import { startEchoServer, transportFor, waitFor } from "../support/harness.js";
import { createTestDatabase, postgresSkipReason } from "../support/postgres.js";
import {
  createServicePki,
  type RunningService,
  type ServicePki,
  serviceTransport,
  startService,
  storeClient,
} from "../support/service-harness.js";

const day = 86_400_000;
const postgresSkip = hasChromium || process.env.CI === "true" ? await postgresSkipReason() : "no browser";
let pki: ServicePki;
let browser: Browser;
let consoleDir: string;

beforeAll(async () => {
  pki = await createServicePki();
  consoleDir = await mkdtemp(join(tmpdir(), "certgate-console-"));
  await buildConsole(consoleDir);
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  if (consoleDir !== undefined) await rm(consoleDir, { recursive: true, force: true });
});

const opened: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (opened.length > 0) await opened.pop()?.();
});

async function service(store: WritableCertificateStore = createMemoryStore()): Promise<RunningService> {
  const running = await startService(pki, store, { console: { directory: consoleDir }, watchHeartbeatMs: 200 });
  opened.push(() => running.close());
  return running;
}

async function open(running: RunningService, who: IssuedCertificate | undefined, path = "/", width = 1280) {
  const context: BrowserContext = await browserContext(browser, running.url, who, width);
  opened.push(() => context.close());
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  await page.goto(`${running.url}${path}`);
  return { context, page, errors };
}

function keyDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s/g, ""), "base64");
}

const row = (page: Page, id: string) =>
  page.getByRole("row").filter({ has: page.getByRole("link", { name: id, exact: true }) });

describe.skipIf(!hasChromium && process.env.CI !== "true")("the console in Chromium", () => {
  it("lets an admin upload PEM, DER, a bundle and PKCS#12 without sending a key, and delete after confirming", async () => {
    const running = await service();
    const [pemCert, derCert, b1, b2, p12Cert] = await Promise.all(
      ["pem-device", "der-device", "bundle-one", "bundle-two", "p12-device"].map((commonName) =>
        issueDevCertificate(pki.ca, { commonName, usages: ["client"] }),
      ),
    );
    const p12 = await createPkcs12({ certificate: p12Cert!.cert, key: p12Cert!.key, password: "s3cret pass" });
    const { page, errors } = await open(running, pki.admin, "/#/upload");
    const bodies: Buffer[] = [];
    page.on("request", (request: Request) => {
      const body = request.postDataBuffer();
      if (body !== null) bodies.push(body);
    });
    await page.getByLabel("Upload certificates").setInputFiles([
      // A PEM file with its private key: only the certificate may leave.
      { name: "pem-device.pem", mimeType: "application/x-pem-file", buffer: Buffer.from(pemCert!.cert + pemCert!.key) },
      { name: "der-device.der", mimeType: "application/pkix-cert", buffer: Buffer.from(derCert!.der) },
      { name: "bundle.pem", mimeType: "application/x-pem-file", buffer: Buffer.from(b1!.cert + b2!.cert) },
      { name: "p12-device.p12", mimeType: "application/x-pkcs12", buffer: Buffer.from(p12) },
    ]);
    // Each certificate of the bundle is shown before upload.
    await expect.poll(() => page.getByText("CN=bundle-one").count()).toBe(1);
    await expect.poll(() => page.getByText("CN=bundle-two").count()).toBe(1);
    await expect.poll(() => page.getByText("the private key in this file stays here").count()).toBe(1);
    await page.getByLabel("Password of p12-device.p12").fill("wrong");
    await page.getByRole("button", { name: "Open" }).click();
    await page.getByText("wrong password").waitFor();
    await page.getByLabel("Password of p12-device.p12").fill("s3cret pass");
    await page.getByRole("button", { name: "Open" }).click();
    await page.getByText("CN=p12-device").waitFor();
    // Ids are editable before upload.
    const bundleIds = page.getByRole("region", { name: "bundle.pem" }).getByLabel("Id");
    await bundleIds.nth(0).fill("bundle-one");
    await bundleIds.nth(1).fill("bundle-two");
    await page.getByRole("region", { name: "pem-device.pem" }).getByLabel("Labels").fill("team=payments, env=prod");
    await screenshot(page, "upload");
    await page.getByRole("button", { name: "Upload all" }).click();
    await expect.poll(() => page.getByText("Stored as").count()).toBe(5);
    await screenshot(page, "upload-done");

    // The keys never appear in any request, in DER, base64 or PEM.
    const keys = [pemCert!.key, p12Cert!.key];
    for (const body of bodies) {
      for (const key of keys) {
        const der = keyDer(key);
        expect(body.includes(der)).toBe(false);
        expect(body.includes(Buffer.from(der.toString("base64")))).toBe(false);
        expect(body.toString("latin1")).not.toContain("PRIVATE KEY");
      }
    }
    expect(bodies.length).toBeGreaterThanOrEqual(5);

    // The table shows them, labels included.
    await page.goto(`${running.url}/#/certificates`);
    for (const id of ["pem-device", "der-device", "bundle-one", "bundle-two", "p12-device"]) {
      await row(page, id).waitFor();
    }
    await expect.poll(() => row(page, "pem-device").getByText("team=payments, env=prod").count()).toBe(1);

    // An API server following the store admits the p12 certificate until it is deleted.
    const remote = createRemoteStore({ transport: serviceTransport(running, pki, pki.reader, "grpc") });
    opened.push(() => remote.close());
    const api = await startEchoServer({
      pki: { ...pki },
      interceptors: [createClientCertInterceptor({ store: remote })],
    });
    opened.push(() => api.close());
    const echo = createClient(EchoService, transportFor(api, { ...pki }, p12Cert!, "connect"));
    await expect(echo.echo({ text: "hi" })).resolves.toMatchObject({ text: "hi" });

    await row(page, "p12-device").getByRole("button", { name: "Delete p12-device" }).click();
    const dialog = page.getByRole("dialog", { name: "Delete p12-device?" });
    await dialog.waitFor();
    await expect.poll(() => dialog.getByText("Certificate p12-device (CN=p12-device)").count()).toBe(1);
    await screenshot(page, "delete-confirmation");
    // Cancel keeps it.
    await dialog.getByRole("button", { name: "Cancel" }).click();
    expect(await row(page, "p12-device").count()).toBe(1);
    await row(page, "p12-device").getByRole("button", { name: "Delete p12-device" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete", exact: true }).click();
    await expect.poll(() => row(page, "p12-device").count()).toBe(0);
    await waitFor(async () => {
      try {
        await echo.echo({ text: "hi" });
        return false;
      } catch (error) {
        return ConnectError.from(error).code === Code.Unauthenticated;
      }
    }, "the API server to refuse the deleted certificate");
    expect(errors).toEqual([]);
  });

  it("shows a reader everything and lets it change nothing", async () => {
    const store = createMemoryStore();
    const alice = await issueDevCertificate(pki.ca, { commonName: "alice device", dnsNames: ["alice.example"] });
    await store.put("alice", alice.der, { labels: { team: "payments" } });
    await store.put("bob", (await issueDevCertificate(pki.ca, { commonName: "bob device" })).der);
    const running = await service(store);
    const { page, errors } = await open(running, pki.reader);
    await row(page, "alice").waitFor();
    // Search by thumbprint in any spelling, label, subject, id.
    const sha256 = (await storeClient(running, pki, pki.reader).getCertificate({ certificateId: "alice" })).certificate!
      .sha256Thumbprint;
    const search = page.getByLabel("Search certificates");
    for (const text of [
      sha256.toLowerCase().replace(/(..)(?!$)/g, "$1:"),
      `SHA256 Fingerprint=${sha256.slice(0, 16).replace(/(..)(?!$)/g, "$1 ")}`,
      "team=payments",
      "ALICE DEVICE",
      "ali",
    ]) {
      await search.fill(text);
      await expect.poll(() => row(page, "bob").count(), { message: text }).toBe(0);
      expect(await row(page, "alice").count(), text).toBe(1);
    }
    await search.fill("no such thing");
    await page.getByText("No certificate matches.").waitFor();
    await search.fill("");
    await row(page, "bob").waitFor();
    expect(await page.getByRole("button", { name: /^Delete/ }).count()).toBe(0);
    expect(await page.getByRole("link", { name: "Upload" }).count()).toBe(0);
    await page.getByText("read only").waitFor();
    await screenshot(page, "certificates-reader");
    await page.getByRole("link", { name: "alice", exact: true }).click();
    await page.getByText("DNS:alice.example").waitFor();
    await page.getByText("EC P-256").waitFor();
    expect(await page.getByRole("button", { name: /^Delete/ }).count()).toBe(0);
    expect(errors).toEqual([]);
    // A forged call from the console's own page is refused by the server.
    const status = await page.evaluate(async () => {
      const res = await fetch("/certgate.v1.CertificateStoreService/DeleteCertificate", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ certificateId: "alice" }),
      });
      return { status: res.status, body: await res.text() };
    });
    expect(status.status).toBe(403);
    expect(status.body).toContain("permission_denied");
    const kept = await storeClient(running, pki, pki.admin).getCertificate({ certificateId: "alice" });
    expect(kept.certificate?.certificateId).toBe("alice");
  });

  it("shows a browser without a certificate the help page and no data", async () => {
    const store = createMemoryStore();
    const alice = await issueDevCertificate(pki.ca, { commonName: "alice device" });
    await store.put("alice", alice.der);
    const running = await service(store);
    for (const [who, width] of [
      [undefined, 1280],
      [undefined, 390],
      [pki.stranger, 1280],
    ] as const) {
      const { page } = await open(running, who, "/", width);
      const requests: string[] = [];
      page.on("request", (request) => requests.push(request.url()));
      await page.reload();
      await page.getByRole("heading", { name: "A client certificate with a role is needed" }).waitFor();
      const text = await page.textContent("body");
      expect(text).not.toContain("alice");
      expect(await page.locator("script").count()).toBe(0);
      // The page and its stylesheet; no call to the store.
      expect(requests.filter((url) => url.includes("CertificateStoreService"))).toEqual([]);
      if (who === undefined) await screenshot(page, "help");
    }
  });

  it("renders a hostile subject as text", async () => {
    const store = createMemoryStore();
    const hostile = "<img src=x onerror=window.pwned=1>";
    const evil = await issueDevCertificate(pki.ca, { commonName: hostile });
    await store.put("evil", evil.der, { labels: { note: "<b>bold</b>" } });
    const running = await service(store);
    const { page } = await open(running, pki.admin);
    await row(page, "evil").waitFor();
    // The subject as the store spells it (DN escapes included), character for character.
    const { certificate } = await storeClient(running, pki, pki.admin).getCertificate({ certificateId: "evil" });
    const subject = (certificate?.subject ?? "").split("\n").join(", ");
    expect(subject).toContain("<img src=x onerror");
    await expect.poll(() => row(page, "evil").getByText(subject, { exact: true }).count()).toBe(1);
    await expect.poll(() => row(page, "evil").getByText("note=<b>bold</b>", { exact: true }).count()).toBe(1);
    await page.getByRole("link", { name: "evil", exact: true }).click();
    await page.getByText(subject, { exact: true }).first().waitFor();
    expect(await page.locator("main img, main b").count()).toBe(0);
    expect(await page.evaluate<unknown>("window.pwned")).toBeUndefined();
  });

  it("removes a certificate deleted elsewhere without a reload", async () => {
    const store = createMemoryStore();
    for (const name of ["keep", "gone"]) {
      await store.put(name, (await issueDevCertificate(pki.ca, { commonName: name })).der);
    }
    const running = await service(store);
    const { page } = await open(running, pki.admin);
    await row(page, "gone").waitFor();
    // A reload would lose this.
    const marker = await page.evaluate<number>("window.marker = 42");
    await storeClient(running, pki, pki.admin).deleteCertificate({ certificateId: "gone" });
    await expect.poll(() => row(page, "gone").count()).toBe(0);
    // One added elsewhere appears, with its fields.
    await storeClient(running, pki, pki.admin).createCertificate({
      certificate: (await issueDevCertificate(pki.ca, { commonName: "new one" })).der,
      certificateId: "new",
    });
    await expect.poll(() => row(page, "new").getByText("CN=new one").count()).toBe(1);
    expect(await page.evaluate<unknown>("window.marker")).toBe(marker);
    expect(await row(page, "keep").count()).toBe(1);
  });

  it("pages the table 50 rows at a time, soonest expiry first", async () => {
    const store = createMemoryStore();
    const now = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < 55; i++) {
      const id = `bulk-${String(i).padStart(2, "0")}`;
      ids.push(id);
      // Expiry in reverse id order: the table's order is not the store's.
      const cert = await issueDevCertificate(pki.ca, { commonName: id, notAfter: new Date(now + (100 - i) * day) });
      await store.put(id, cert.der);
    }
    const running = await service(store);
    const { page } = await open(running, pki.reader);
    await page.getByText("55 of 55 certificates, sorted by expiry").waitFor();
    const firstColumn = () => page.locator("tbody th").allTextContents();
    expect((await firstColumn())[0]).toBe("bulk-54");
    expect(await firstColumn()).toHaveLength(50);
    await page.getByRole("button", { name: "Next page" }).click();
    await expect.poll(firstColumn).toEqual(["bulk-04", "bulk-03", "bulk-02", "bulk-01", "bulk-00"]);
    expect(await page.getByRole("button", { name: "Next page" }).isDisabled()).toBe(true);
  });

  it("charts expiry, marks expired and soon, and links each bar to the filtered table", async () => {
    const store = createMemoryStore();
    const now = Date.now();
    const cert = (commonName: string, notAfter: number) =>
      issueDevCertificate(pki.ca, { commonName, notBefore: new Date(now - 400 * day), notAfter: new Date(notAfter) });
    await store.put("expired-one", (await cert("expired one", now - 40 * day)).der);
    await store.put("soon-one", (await cert("soon one", now + 10 * day)).der);
    await store.put("later-one", (await cert("later one", now + 200 * day)).der);
    const running = await service(store);
    const { page } = await open(running, pki.reader, "/#/expiry?by=month");
    await page.getByRole("table", { name: /by the month they expire/ }).waitFor();
    const bar = page.getByRole("link", { name: /1 certificate, 1 expired/ });
    await expect.poll(() => bar.count()).toBe(1);
    await expect.poll(() => page.getByRole("link", { name: /1 within 30 days/ }).count()).toBe(1);
    await screenshot(page, "expiry");
    await bar.click();
    await row(page, "expired-one").waitFor();
    expect(await row(page, "soon-one").count()).toBe(0);
    expect(await row(page, "later-one").count()).toBe(0);
    await page.getByText(/^Expiring from/).waitFor();
    // By week: the expired one's week, Monday to Monday.
    await page.goto(`${running.url}/#/expiry?by=week`);
    const week = page.getByRole("link", { name: /^week of \d{4}-\d\d-\d\d: 1 certificate, 1 expired$/ });
    await week.waitFor();
    const href = (await week.getAttribute("href")) ?? "";
    const [, from, to] = /from=(\d{4}-\d\d-\d\d)&to=(\d{4}-\d\d-\d\d)/.exec(href) ?? [];
    expect(new Date(`${from}T00:00:00Z`).getUTCDay()).toBe(1);
    expect(Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)).toBe(7 * day);
  });

  it("filters the audit trail by certificate id", async () => {
    const running = await service();
    const admin = storeClient(running, pki, pki.admin);
    for (const name of ["alpha", "beta"]) {
      await admin.createCertificate({
        certificate: (await issueDevCertificate(pki.ca, { commonName: name })).der,
        certificateId: name,
      });
    }
    await admin.deleteCertificate({ certificateId: "beta" });
    const { page } = await open(running, pki.reader, "/#/audit");
    await page.getByRole("cell", { name: "alpha" }).waitFor();
    await screenshot(page, "audit");
    await page.getByLabel("Certificate id").fill("beta");
    await page.getByRole("button", { name: "Filter" }).click();
    await expect.poll(() => page.getByRole("cell", { name: "alpha" }).count()).toBe(0);
    await expect.poll(() => page.getByRole("cell", { name: "beta" }).count()).toBe(2);
    // A time range that ends before everything shows nothing.
    await page.getByLabel("Before (UTC)").fill("2000-01-01T00:00");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.getByText("No audit events match.").waitFor();
  });

  it("lays out every page at 1280 and 390 pixels wide, keyboard first", async () => {
    const store = createMemoryStore();
    const now = Date.now();
    for (const [i, days] of [-20, 5, 25, 90, 400].entries()) {
      const c = await issueDevCertificate(pki.ca, {
        commonName: `device-${i + 1}.fleet.example`,
        subjectSuffix: "O=Contoso Devices, C=US",
        dnsNames: [`device-${i + 1}.fleet.example`],
        notBefore: new Date(now - 500 * day),
        notAfter: new Date(now + days * day),
      });
      await store.put(`device-${i + 1}`, c.der, { labels: { fleet: i % 2 === 0 ? "north" : "south" } });
    }
    const running = await service(store);
    for (const width of [1280, 390]) {
      const { page, errors } = await open(running, pki.admin, "/#/certificates", width);
      const pages = [
        ["certificates", "/#/certificates", "device-1"],
        ["details", "/#/certificates/device-2", "SHA-256"],
        ["upload", "/#/upload", "Upload all"],
        ["expiry", "/#/expiry?by=month", "Period"],
        ["audit", "/#/audit", "Time"],
        ["health", "/#/health", "serving"],
      ] as const;
      for (const [name, path, text] of pages) {
        await page.goto(`${running.url}${path}`);
        await page.getByText(text, { exact: true }).first().waitFor();
        // Nothing wider than the window: tables scroll inside their own box.
        const overflow = await page.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth");
        expect(overflow, `${name} at ${width}`).toBeLessThanOrEqual(0);
        await screenshot(page, name);
      }
      // The keyboard reaches the navigation first (after the skip link).
      await page.goto("about:blank");
      await page.goto(`${running.url}/#/certificates`);
      await row(page, "device-1").waitFor();
      await page.keyboard.press("Tab");
      expect(await page.evaluate<string | undefined>("document.activeElement?.textContent")).toBe("Skip to content");
      await page.keyboard.press("Tab");
      expect(await page.evaluate<string | undefined>("document.activeElement?.textContent")).toBe("Certificates");
      expect(errors).toEqual([]);
    }
  });

  // Two consoles' worth of the same story on the stores certgate serve runs on.
  for (const kind of ["folder", "PostgreSQL"] as const) {
    it.skipIf(kind === "PostgreSQL" && postgresSkip !== undefined)(
      `works the same on a ${kind} store: upload, uploader from the audit trail, a deletion elsewhere, health`,
      async () => {
        let primary: WritableCertificateStore;
        let elsewhere: RunningService;
        if (kind === "folder") {
          const directory = await mkdtemp(join(tmpdir(), "certgate-console-store-"));
          opened.push(() => rm(directory, { recursive: true, force: true }));
          const folder = await createDirectoryStore({ directory });
          opened.push(() => folder.close());
          primary = folder;
        } else {
          const db = await createTestDatabase();
          opened.push(() => db.drop());
          const replica = async () => {
            const store = await createPostgresStore({
              connectionString: db.url,
              schema: "console",
              catchUpIntervalMs: 100,
            });
            opened.push(() => store.close());
            return store;
          };
          primary = await replica();
          // A second replica on the same database: the deletion is made there.
          elsewhere = await startService(pki, await replica());
          opened.push(() => elsewhere.close());
        }
        const running = await service(primary);
        elsewhere ??= running;
        const device = await issueDevCertificate(pki.ca, { commonName: `${kind} device`, usages: ["client"] });
        const { page, errors } = await open(running, pki.admin, "/#/upload");
        await page
          .getByLabel("Upload certificates")
          .setInputFiles([
            { name: "shared-device.pem", mimeType: "application/x-pem-file", buffer: Buffer.from(device.cert) },
          ]);
        await page.getByRole("button", { name: "Upload all" }).click();
        await page.getByRole("link", { name: "shared-device", exact: true }).click();
        await page.getByText(`CN=${kind} device`, { exact: true }).waitFor();
        await expect.poll(() => page.locator("#uploaded").textContent()).toMatch(/^CN=admin, \d{4}-\d\d-\d\d /);
        await page.getByRole("link", { name: "Certificates", exact: true }).click();
        await row(page, "shared-device").waitFor();
        await storeClient(elsewhere, pki, pki.admin).deleteCertificate({ certificateId: "shared-device" });
        await expect.poll(() => row(page, "shared-device").count()).toBe(0);
        await page.getByRole("link", { name: "Health", exact: true }).click();
        await expect.poll(() => page.getByText("serving", { exact: true }).count()).toBe(2);
        expect(errors).toEqual([]);
      },
    );
  }
});
