// The one display rule for untrusted strings, its use by `certgate serve`'s
// text log, and the dev certificates that refuse control characters.
import { describe, expect, it } from "vitest";
import { displayText } from "../../src/core/display-text.js";
import { parseCertificate } from "../../src/core/certificate.js";
import { createDevCa, issueDevCertificate } from "../../src/dev-certificates.js";
import type { CliIo } from "../../src/cli/common.js";
import { serveLogOf } from "../../src/cli/serve-log.js";

describe("displayText()", () => {
  it("keeps printable text as it is, CJK and accents included", () => {
    expect(displayText("CN=alice, O=Contoso")).toBe("CN=alice, O=Contoso");
    expect(displayText("CN=日本語 Zoë")).toBe("CN=日本語 Zoë");
  });

  it("escapes control characters visibly", () => {
    expect(displayText("a\nb\rc\td")).toBe("a\\nb\\rc\\td");
    expect(displayText("x\u001b[31mred\u0000\u007f\u0085")).toBe("x\\x1b[31mred\\x00\\x7f\\x85");
  });

  it("escapes bidi controls, line and paragraph separators and invisible characters", () => {
    expect(displayText("CN=admin\u202Egnp.exe")).toBe("CN=admin\\u202egnp.exe");
    expect(displayText("a\u2028b\u2029c")).toBe("a\\u2028b\\u2029c");
    for (const c of [
      "\u202a",
      "\u202b",
      "\u202c",
      "\u202d",
      "\u2066",
      "\u2067",
      "\u2068",
      "\u2069",
      "\u200e",
      "\u200f",
    ]) {
      expect(displayText(c)).toBe(`\\u${c.charCodeAt(0).toString(16)}`);
    }
    expect(displayText("\u200b\ufeff")).toBe("\\u200b\\ufeff");
    expect(displayText("tag\u{e0041}")).toBe("tag\\u{e0041}");
  });

  it("shortens a long value to maxLength characters with an ellipsis", () => {
    const long = "x".repeat(4096);
    expect(displayText(long)).toBe(`${"x".repeat(199)}…`);
    expect(Array.from(displayText("語".repeat(500), 10))).toHaveLength(10);
    expect(displayText("abc", 3)).toBe("abc");
    expect(displayText("abcd", 3)).toBe("ab…");
  });

  it("never cuts a surrogate pair in half", () => {
    expect(displayText("😀😀😀", 2)).toBe("😀…");
  });
});

describe("serveLogOf() text lines", () => {
  it("prints a file name with a newline or ESC as one escaped line, never a forged one", () => {
    const lines: string[] = [];
    const io = { stdout: (t: string) => lines.push(t), stderr: (t: string) => lines.push(t) } as unknown as CliIo;
    const log = serveLogOf(io);
    log("skipped /data/evil\ncertgate serve: stored admin\u001b[2K.pem: not a certificate");
    expect(lines).toEqual([
      "certgate serve: skipped /data/evil\\ncertgate serve: stored admin\\x1b[2K.pem: not a certificate\n",
    ]);
  });
});

describe("issueDevCertificate()", () => {
  it("refuses a common name with a control character, naming it", async () => {
    const ca = await createDevCa();
    for (const commonName of ["alice\nbob", "esc\u001b[31m", "nul\u0000"]) {
      await expect(issueDevCertificate(ca, { commonName })).rejects.toThrow(/control character U\+00(0A|1B|00)/);
    }
  });

  it("keeps a common name with bidi, separator and CJK characters in the subject", async () => {
    const ca = await createDevCa();
    const issued = await issueDevCertificate(ca, { commonName: "admin\u202Egnp \u2028 日本" });
    expect(parseCertificate(issued.cert).subject).toContain("admin\u202Egnp \u2028 日本");
  });
});
