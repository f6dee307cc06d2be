// A minimal HTTP/1.1 response reader for the load generator: fixed pre-built requests go out on
// keep-alive connections, and this counts complete responses (Content-Length or chunked bodies)
// without allocating per request beyond the incoming chunks. Not a general HTTP client.

const CRLFCRLF = Buffer.from('\r\n\r\n');

/** A pre-built request: POST /rr/<responseBytes> with a body of requestBytes. */
export function buildRequest({ host, requestBytes, responseBytes }) {
  const head = `POST /rr/${responseBytes} HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/octet-stream\r\ncontent-length: ${requestBytes}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.alloc(requestBytes, 0x61)]);
}

export function buildBulkRequest({ host, bytes }) {
  return Buffer.from(`GET /bulk/${bytes} HTTP/1.1\r\nhost: ${host}\r\n\r\n`, 'latin1');
}

/**
 * Feeds bytes; calls onHead(status, bodyLength|undefined) when a response head is parsed,
 * onBody(n) as body bytes arrive, and onResponse(status) when a response is complete.
 * Throws on malformed input.
 */
export class ResponseReader {
  constructor({ onResponse, onHead = () => {}, onBody = () => {} }) {
    this.onResponse = onResponse;
    this.onHead = onHead;
    this.onBody = onBody;
    this.pending = undefined; // unparsed bytes (head, or chunked framing)
    this.state = 'head'; // head | body | chunk-size | chunk-data | chunk-crlf | trailers
    this.left = 0;
    this.status = 0;
  }

  feed(chunk) {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let i = 0;
    while (i < buf.length) {
      if (this.state === 'head') {
        const end = buf.indexOf(CRLFCRLF, i);
        if (end < 0) {
          if (buf.length - i > 64 * 1024) throw new Error('response head larger than 64 KiB');
          this.pending = buf.subarray(i);
          return;
        }
        const head = buf.toString('latin1', i, end);
        i = end + 4;
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
        if (!m) throw new Error(`not an HTTP/1.1 response: ${JSON.stringify(head.slice(0, 40))}`);
        this.status = Number(m[1]);
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        const chunked = /\r\ntransfer-encoding:[^\r]*chunked/i.test(head);
        if (chunked) {
          this.onHead(this.status, undefined);
          this.state = 'chunk-size';
        } else {
          this.left = cl ? Number(cl[1]) : 0;
          this.onHead(this.status, this.left);
          this.state = 'body';
          if (this.left === 0) this.complete();
        }
      } else if (this.state === 'body' || this.state === 'chunk-data') {
        const n = Math.min(this.left, buf.length - i);
        i += n;
        this.left -= n;
        if (n > 0) this.onBody(n);
        if (this.left === 0) {
          if (this.state === 'body') this.complete();
          else this.state = 'chunk-crlf';
        }
      } else {
        // chunk-size, chunk-crlf and trailers are CRLF-terminated lines
        const eol = buf.indexOf('\r\n', i, 'latin1');
        if (eol < 0) {
          this.pending = buf.subarray(i);
          return;
        }
        const line = buf.toString('latin1', i, eol);
        i = eol + 2;
        if (this.state === 'chunk-crlf') {
          if (line !== '') throw new Error('bad chunk terminator');
          this.state = 'chunk-size';
        } else if (this.state === 'chunk-size') {
          const size = parseInt(line, 16);
          if (!Number.isFinite(size)) throw new Error(`bad chunk size ${JSON.stringify(line)}`);
          if (size === 0) this.state = 'trailers';
          else {
            this.left = size;
            this.state = 'chunk-data';
          }
        } else if (line === '') {
          this.complete(); // end of trailers
        }
      }
    }
  }

  complete() {
    this.state = 'head';
    this.onResponse(this.status);
  }
}
