import { fromBER, type OctetString } from "asn1js";
import { type CertBag, PFX, type SafeContents } from "pkijs";

/**
 * Pkcs12Certificates is what `readPkcs12Certificates` finds: the DER of
 * every certificate in a PKCS#12 file (`.p12`, `.pfx`), or why not.
 */
export type Pkcs12Certificates =
  | {
      readonly kind: "certificates";
      readonly ders: readonly Uint8Array[];
      /** How many private key bags the file holds; they are left encrypted. */
      readonly privateKeys: number;
    }
  | {
      readonly kind: "problem";
      /**
       * `not_pkcs12`, `wrong_password`, `legacy_encryption` (RC2 or 3DES,
       * which WebCrypto lacks), `no_certificate` or `invalid`.
       */
      readonly code: "not_pkcs12" | "wrong_password" | "legacy_encryption" | "no_certificate" | "invalid";
      readonly reason: string;
    };

// PKCS#12 bag types (1.2.840.113549.1.12.10.1.x): keyBag, pkcs8ShroudedKeyBag, certBag.
const keyBags = new Set(["1.2.840.113549.1.12.10.1.1", "1.2.840.113549.1.12.10.1.2"]);
const certBag = "1.2.840.113549.1.12.10.1.3";

/**
 * readPkcs12Certificates opens a PKCS#12 file with its password (checking
 * its MAC) and returns its certificates. The key bags are never decrypted:
 * the private key is not needed, and is never read, kept or sent. It runs on
 * WebCrypto (pkijs), the same in Node.js and in the console's browser.
 */
export async function readPkcs12Certificates(bytes: Uint8Array, password: string): Promise<Pkcs12Certificates> {
  const asn1 = fromBER(bytes);
  let pfx: PFX;
  try {
    if (asn1.offset === -1) throw new Error(asn1.result.error);
    pfx = new PFX({ schema: asn1.result });
  } catch {
    return { kind: "problem", code: "not_pkcs12", reason: "not a PKCS#12 file" };
  }
  const pass = new TextEncoder().encode(password).buffer as ArrayBuffer;
  try {
    await pfx.parseInternalValues({ password: pass, checkIntegrity: true });
  } catch (error) {
    return /integrity|mac/i.test(String(error))
      ? { kind: "problem", code: "wrong_password", reason: "wrong password" }
      : { kind: "problem", code: "invalid", reason: `cannot open it: ${String(error)}` };
  }
  const safe = pfx.parsedValue?.authenticatedSafe;
  if (safe === undefined) {
    return { kind: "problem", code: "invalid", reason: "not a password-protected PKCS#12 file" };
  }
  const count = safe.safeContents.length;
  try {
    await safe.parseInternalValues({ safeContents: Array.from({ length: count }, () => ({ password: pass })) });
  } catch (error) {
    const text = String(error);
    if (/Unknown "contentEncryptionAlgorithm"|Unsupported/.test(text)) {
      return {
        kind: "problem",
        code: "legacy_encryption",
        reason:
          "the PKCS#12 file uses legacy encryption (RC2 or 3DES) that WebCrypto cannot decrypt; export it with AES (openssl pkcs12 -export without -legacy) or give the certificate as PEM",
      };
    }
    return { kind: "problem", code: "invalid", reason: `cannot decrypt it: ${text}` };
  }
  const ders: Uint8Array[] = [];
  let privateKeys = 0;
  for (const contents of safe.parsedValue?.safeContents ?? []) {
    for (const bag of (contents.value as SafeContents).safeBags) {
      if (keyBags.has(bag.bagId)) privateKeys++;
      if (bag.bagId !== certBag) continue;
      ders.push(new Uint8Array(((bag.bagValue as CertBag).certValue as OctetString).valueBlock.valueHexView));
    }
  }
  if (ders.length === 0) {
    return { kind: "problem", code: "no_certificate", reason: "no certificate in the PKCS#12 file" };
  }
  return { kind: "certificates", ders, privateKeys };
}
