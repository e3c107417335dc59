/**
 * canonicalSerialNumber writes a certificate serial number in the one form
 * certgate compares and shows everywhere (certificates, CRL entries,
 * `serialNumber` identities, the store service, `onDecision`, the CLI): the
 * integer's value in upper-case hex, two digits per byte, with a leading `-`
 * when negative. That is how OpenSSL (`openssl x509 -serial`) and Node's
 * `X509Certificate.serialNumber` print it: `0F`, `8001`, `-7FFF`.
 *
 * It accepts hex in any case, with colons, spaces and leading zeros (as
 * Windows shows serials: `00 a1 ...`), and an optional leading `-`. Hex
 * without a sign is read as a non-negative value, so the raw two's-complement
 * bytes of a negative serial (`8001` for -0x7FFF, as .NET's `SerialNumber`
 * shows it) name another number: write negative serials with their `-`.
 * Throws a `TypeError` on anything else.
 */
export function canonicalSerialNumber(text: string): string {
  const match = /^\s*(-?)\s*((?:[0-9a-fA-F][\s:]*)+)$/.exec(text);
  if (match === null) {
    throw new TypeError(`serial number must be hex, got ${JSON.stringify(text.slice(0, 80))}`);
  }
  const digits = (match[2] ?? "").replace(/[\s:]/g, "").replace(/^0+/, "").toUpperCase();
  if (digits === "") return "00";
  return `${match[1]}${digits.length % 2 === 1 ? "0" : ""}${digits}`;
}

/**
 * serialNumberOfDer reads the content bytes of a DER INTEGER (a serial
 * number as a certificate or a CRL entry carries it, two's complement, big
 * endian) into the form of `canonicalSerialNumber`. Throws a `RangeError`
 * on no bytes at all.
 */
export function serialNumberOfDer(content: Uint8Array): string {
  if (content.length === 0) throw new RangeError("der: empty INTEGER");
  if ((content[0]! & 0x80) === 0) {
    return canonicalSerialNumber(Buffer.from(content).toString("hex"));
  }
  // Negative: the magnitude is the two's complement of the bytes.
  const magnitude = Buffer.alloc(content.length);
  let carry = 1;
  for (let i = content.length - 1; i >= 0; i--) {
    const v = (~content[i]! & 0xff) + carry;
    magnitude[i] = v & 0xff;
    carry = v >> 8;
  }
  return canonicalSerialNumber(`-${magnitude.toString("hex")}`);
}
