import { randomBytes, webcrypto } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { BmpString, fromBER, OctetString } from "asn1js";
import * as pkijs from "pkijs";
import { decodePemOrDer } from "../core/pem-der.js";

/**
 * Pkcs12Options are the parts of a PKCS#12 file that `createPkcs12` writes.
 */
export interface Pkcs12Options {
  /** The certificate, PEM or DER. Required. */
  certificate: string | Uint8Array;
  /** Its private key, PKCS#8 PEM ("PRIVATE KEY"). Required. */
  key: string;
  /** The password of the file. Required. */
  password: string;
  /** The name browsers show for the identity. By default, none. */
  friendlyName?: string;
}

const engine = new pkijs.CryptoEngine({
  name: "node",
  crypto: webcrypto as unknown as ConstructorParameters<typeof pkijs.CryptoEngine>[0]["crypto"],
});

function pkcs8Of(pem: string): ArrayBuffer {
  const match = /-----BEGIN PRIVATE KEY-----([\s\S]*?)-----END PRIVATE KEY-----/.exec(pem);
  if (match === null) throw new TypeError("createPkcs12: key is not a PKCS#8 PEM PRIVATE KEY");
  const der = Buffer.from(match[1] ?? "", "base64");
  return der.buffer.slice(der.byteOffset, der.byteOffset + der.length) as ArrayBuffer;
}

/**
 * createPkcs12 writes a certificate and its key as a PKCS#12 file that
 * browsers and operating systems import: the key in a shrouded key bag,
 * the certificate in an encrypted bag, both with PBES2 (AES-256-CBC,
 * PBKDF2 with HMAC-SHA-256), and a SHA-256 MAC, as OpenSSL 3 writes by
 * default.
 */
export async function createPkcs12(options: Pkcs12Options): Promise<Uint8Array> {
  const decoded = decodePemOrDer(options.certificate, { otherBlocks: "skip" });
  const der = decoded.kind === "problem" ? undefined : decoded.ders[0];
  if (der === undefined) throw new TypeError("createPkcs12: certificate is not a certificate");
  const certAsn1 = fromBER(new Uint8Array(der));
  const certificate = new pkijs.Certificate({ schema: certAsn1.result });
  const keyInfo = new pkijs.PrivateKeyInfo({ schema: fromBER(pkcs8Of(options.key)).result });
  const password = new TextEncoder().encode(options.password).buffer as ArrayBuffer;
  const localKeyId = await webcrypto.subtle.digest("SHA-1", new Uint8Array(der));
  const attributes = [
    new pkijs.Attribute({
      type: "1.2.840.113549.1.9.21", // localKeyId: ties the key to its certificate
      values: [new OctetString({ valueHex: localKeyId })],
    }),
  ];
  if (options.friendlyName !== undefined) {
    attributes.push(
      new pkijs.Attribute({
        type: "1.2.840.113549.1.9.20", // friendlyName: what key stores show
        values: [new BmpString({ value: options.friendlyName })],
      }),
    );
  }
  const encryption = {
    password,
    contentEncryptionAlgorithm: { name: "AES-CBC", length: 256 },
    hmacHashAlgorithm: "SHA-256",
    iterationCount: 2048,
  };
  const keyBag = new pkijs.PKCS8ShroudedKeyBag({ parsedValue: keyInfo });
  await keyBag.makeInternalValues(encryption, engine);
  const pfx = new pkijs.PFX({
    parsedValue: {
      integrityMode: 0,
      authenticatedSafe: new pkijs.AuthenticatedSafe({
        parsedValue: {
          safeContents: [
            {
              privacyMode: 0,
              value: new pkijs.SafeContents({
                safeBags: [
                  new pkijs.SafeBag({
                    bagId: "1.2.840.113549.1.12.10.1.2",
                    bagValue: keyBag,
                    bagAttributes: attributes,
                  }),
                ],
              }),
            },
            {
              privacyMode: 1,
              value: new pkijs.SafeContents({
                safeBags: [
                  new pkijs.SafeBag({
                    bagId: "1.2.840.113549.1.12.10.1.3",
                    bagValue: new pkijs.CertBag({ parsedValue: certificate }),
                    bagAttributes: attributes,
                  }),
                ],
              }),
            },
          ],
        },
      }),
    },
  });
  await pfx.parsedValue!.authenticatedSafe!.makeInternalValues({ safeContents: [{}, encryption] }, engine);
  await pfx.makeInternalValues(
    { password, iterations: 2048, pbkdf2HashAlgorithm: "SHA-256", hmacHashAlgorithm: "SHA-256" },
    engine,
  );
  return new Uint8Array(pfx.toSchema().toBER(false));
}

/**
 * DevP12 is what `writeDevP12` wrote: the files and their password.
 */
export interface DevP12 {
  readonly admin: string;
  readonly reader: string;
  readonly password: string;
}

/**
 * writeDevP12 writes `admin.p12` and `reader.p12` into the development
 * folder for importing into a browser, with a new random password each
 * start (printed by `certgate serve`); the files are mode 0600 and replaced
 * atomically.
 */
export async function writeDevP12(
  dir: string,
  identities: { admin: { cert: string; key: string }; reader: { cert: string; key: string } },
  readText: (path: string) => Promise<string>,
): Promise<DevP12> {
  const password = randomBytes(9).toString("base64url");
  const written = { admin: join(dir, "admin.p12"), reader: join(dir, "reader.p12") };
  for (const name of ["admin", "reader"] as const) {
    const bytes = await createPkcs12({
      certificate: await readText(identities[name].cert),
      key: await readText(identities[name].key),
      password,
      friendlyName: `certgate ${name}`,
    });
    const staging = `${written[name]}.${randomBytes(4).toString("hex")}.tmp`;
    const handle = await open(staging, "wx", 0o600);
    try {
      await handle.writeFile(bytes);
      await handle.chmod(0o600);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(staging, written[name]);
    } catch (error) {
      await rm(staging, { force: true });
      throw error;
    }
  }
  return { ...written, password };
}
