/** PEM encoding helpers: DER ⇄ PEM and splitting concatenated PEM bundles. */

export function toPem(der: Uint8Array | ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----\r?\n?/g;

/** Every PEM block in `text`, in order, each normalised to end with a newline. */
export function splitPem(text: string, label = 'CERTIFICATE'): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(BLOCK)) {
    if (m[1] === label) out.push(m[0].endsWith('\n') ? m[0] : m[0] + '\n');
  }
  return out;
}

export function pemToDer(pem: string): Buffer {
  const body = pem.replace(/-----(BEGIN|END) [A-Z0-9 ]+-----/g, '').replace(/\s+/g, '');
  return Buffer.from(body, 'base64');
}
