// A real browser for the console tests: Debian's Chromium driven by
// playwright-core, one launch per test file.
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import type { IssuedCertificate } from "../../src/dev-certificates.js";

/** Where Debian installs Chromium (apt-get install chromium). */
export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Whether Chromium is installed; CI installs it, so tests fail there without it. */
export const hasChromium = existsSync(chromiumPath);

/** launchBrowser starts headless Chromium without background network traffic. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * browserContext opens a context presenting `client` (or no certificate)
 * to `origin`. The test CA is not trusted by the browser: HTTPS errors
 * about the server certificate are ignored, the client certificate is not.
 */
export function browserContext(
  browser: Browser,
  origin: string,
  client: IssuedCertificate | undefined,
  width = 1280,
): Promise<BrowserContext> {
  return browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: { width, height: width < 600 ? 844 : 800 },
    clientCertificates:
      client === undefined ? [] : [{ origin, cert: Buffer.from(client.cert), key: Buffer.from(client.key) }],
  });
}

/** The folder screenshots of a test run go to (ignored by git). */
export const screenshotDir = join(process.cwd(), "test-output", "console");

/** screenshot saves the page at its width, for people to look at. */
export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(screenshotDir, { recursive: true });
  const width = page.viewportSize()?.width ?? 0;
  await page.screenshot({ path: join(screenshotDir, `${name}-${width}.png`), fullPage: true });
}
