import { fromBER, type OctetString } from "asn1js";
import { Certificate as PkiCertificate, type GeneralName, type RelativeDistinguishedNames } from "pkijs";

/** CertificateFacts is what a person checks of a certificate beyond the stored fields. */
export interface CertificateFacts {
  /** Subject distinguished name, as "CN=..., O=...". */
  readonly subject: string;
  /** Not-after. */
  readonly notAfter: Date;
  /** Subject alternative names, as "DNS:example.com", "IP:10.0.0.1". */
  readonly sans: string[];
  /** The key type: "EC P-256", "RSA 2048", "Ed25519". */
  readonly keyType: string;
}

const names: Record<string, string> = {
  "2.5.4.3": "CN",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.5": "serialNumber",
  "1.2.840.113549.1.9.1": "emailAddress",
  "0.9.2342.19200300.100.1.25": "DC",
};

const curves: Record<string, string> = {
  "1.2.840.10045.3.1.7": "P-256",
  "1.3.132.0.34": "P-384",
  "1.3.132.0.35": "P-521",
};

/** parseDer reads a certificate's DER with pkijs; throws when it is not one. */
export function parseDer(der: Uint8Array): PkiCertificate {
  const asn1 = fromBER(der);
  if (asn1.offset === -1) throw new Error("not DER");
  return new PkiCertificate({ schema: asn1.result });
}

function dn(rdns: RelativeDistinguishedNames): string {
  return rdns.typesAndValues
    .map((tv) => `${names[tv.type] ?? tv.type}=${String((tv.value.valueBlock as { value?: unknown }).value ?? "")}`)
    .join(", ");
}

function sanText(name: GeneralName): string {
  switch (name.type) {
    case 1:
      return `email:${String(name.value)}`;
    case 2:
      return `DNS:${String(name.value)}`;
    case 6:
      return `URI:${String(name.value)}`;
    case 7: {
      const bytes = new Uint8Array((name.value as OctetString).valueBlock.valueHexView);
      if (bytes.length === 4) return `IP:${[...bytes].join(".")}`;
      const groups: string[] = [];
      for (let i = 0; i + 1 < bytes.length; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
      return `IP:${groups.join(":")}`;
    }
    default:
      return `other name (type ${name.type})`;
  }
}

/** factsOf reads the subject, SANs and key type of a certificate's DER. */
export function factsOf(der: Uint8Array): CertificateFacts {
  const cert = parseDer(der);
  const sans: string[] = [];
  for (const ext of cert.extensions ?? []) {
    if (ext.extnID === "2.5.29.17") {
      const parsed = ext.parsedValue as { altNames?: GeneralName[] } | undefined;
      for (const name of parsed?.altNames ?? []) sans.push(sanText(name));
    }
  }
  const spki = cert.subjectPublicKeyInfo;
  const oid = spki.algorithm.algorithmId;
  let keyType = oid;
  if (oid === "1.2.840.10045.2.1") {
    const params = spki.algorithm.algorithmParams as { valueBlock?: { toString(): string } } | undefined;
    const curve = params?.valueBlock?.toString() ?? "";
    keyType = `EC ${curves[curve] ?? curve}`;
  } else if (oid === "1.2.840.113549.1.1.1") {
    const key = spki.parsedKey as { modulus?: { valueBlock: { valueHexView: Uint8Array } } } | undefined;
    const modulus = key?.modulus?.valueBlock.valueHexView;
    const bits = modulus === undefined ? 0 : (modulus.length - (modulus[0] === 0 ? 1 : 0)) * 8;
    keyType = bits === 0 ? "RSA" : `RSA ${bits}`;
  } else if (oid === "1.3.101.112") {
    keyType = "Ed25519";
  } else if (oid === "1.3.101.113") {
    keyType = "Ed448";
  }
  return { subject: dn(cert.subject), notAfter: cert.notAfter.value, sans, keyType };
}

/** sha256Hex is the SHA-256 thumbprint of bytes, upper-case hex. */
export async function sha256Hex(der: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der as BufferSource));
  return [...digest]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("")
    .toUpperCase();
}
