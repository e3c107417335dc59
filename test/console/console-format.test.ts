import { describe, expect, it } from "vitest";
import { colonHex, daysLeft, daysLeftText, dnText, hexOnly, labelsText, parseLabels } from "../../console/format.js";

describe("console format helpers", () => {
  it("hexOnly reads a thumbprint in any spelling people paste", () => {
    const hex = "AB12CD34";
    for (const text of [
      "ab:12:cd:34",
      "AB 12 CD 34",
      "sha256 Fingerprint=AB:12:CD:34",
      "SHA1=ab12cd34",
      " ab12cd34 ",
    ]) {
      expect(hexOnly(text)).toBe(hex);
    }
  });

  it("parseLabels reads key=value lists back, and refuses what is not one", () => {
    const labels = { team: "payments", env: "prod", note: "a=b" };
    expect(parseLabels(labelsText(labels))).toEqual(labels);
    expect(parseLabels(" team = payments ,, ")).toEqual({ team: "payments" });
    expect(parseLabels("")).toEqual({});
    expect(() => parseLabels("team")).toThrow(/not key=value/);
    expect(() => parseLabels("=x")).toThrow(/not key=value/);
  });

  it("colonHex spells a serial as openssl x509 -text does, sign kept", () => {
    expect(colonHex("0F1A")).toBe("0f:1a");
    expect(colonHex("-7FFF")).toBe("-7f:ff");
  });

  it("dnText puts Node's one-attribute-per-line names on one line", () => {
    expect(dnText("CN=device\nO=Contoso\nC=US")).toBe("CN=device, O=Contoso, C=US");
  });

  it("daysLeft counts whole days, negative once expired", () => {
    const now = Date.UTC(2026, 0, 1);
    expect(daysLeft(new Date(now + 1.5 * 86_400_000), now)).toBe(1);
    expect(daysLeft(new Date(now - 0.5 * 86_400_000), now)).toBe(-1);
    expect(daysLeftText(-1)).toBe("expired 1 day ago");
    expect(daysLeftText(12)).toBe("12 days");
  });
});
