/**
 * Minimal DER writer for the leaf-certificate fast path. Only definite-length encodings of the
 * handful of universal types a leaf template needs; everything structural is produced once by
 * @peculiar/asn1-x509 and spliced in as bytes.
 */

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), lengthBytes(body.length), body]);
}

export const seq = (...content: Uint8Array[]): Buffer => tlv(0x30, ...content);
export const octetString = (b: Uint8Array): Buffer => tlv(0x04, b);
/** BIT STRING with zero unused bits. */
export const bitString = (b: Uint8Array): Buffer => tlv(0x03, Buffer.from([0]), b);
export const BOOLEAN_TRUE = Buffer.from([0x01, 0x01, 0xff]);

/** INTEGER from unsigned big-endian magnitude bytes (adds a sign octet when needed). */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const m = magnitude.subarray(start);
  return (m[0] ?? 0) & 0x80 ? tlv(0x02, Buffer.from([0]), m) : tlv(0x02, m);
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; both to the second, in Z. */
export function x509Time(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  const year = d.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(0x17, Buffer.from(digits.slice(2) + 'Z', 'ascii'));
  return tlv(0x18, Buffer.from(digits + 'Z', 'ascii'));
}

/** OBJECT IDENTIFIER from dotted form. */
export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const [a = 0, b = 0, ...rest] = parts;
  const out: number[] = [40 * a + b];
  for (const p of rest) {
    const chunk: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}
