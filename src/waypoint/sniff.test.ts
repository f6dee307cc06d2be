import { describe, expect, it } from 'vitest';
import { createDuplexPair } from './test-helpers/duplex-pair.js';
import { buildProtocolGuess, HTTP2_PREFACE, MAX_SNIFF_BYTES, sniffProtocol } from './sniff.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('buildProtocolGuess', () => {
  it.each([
    ['empty, more to come', '', false, 'need-more'],
    ['empty at EOF', '', true, 'tcp'],
    ['the HTTP/2 preface', HTTP2_PREFACE.toString('latin1'), false, 'http2'],
    [
      'the preface plus a SETTINGS frame',
      HTTP2_PREFACE.toString('latin1') + '\x00\x00\x00\x04',
      false,
      'http2',
    ],
    ['half the preface', 'PRI * HTTP/2.0\r\n', false, 'need-more'],
    ['half the preface at EOF', 'PRI * HTTP/2.0\r\n', true, 'tcp'],
    ['a GET request line', 'GET / HTTP/1.1\r\n', false, 'http1'],
    ['HTTP/1.0', 'POST /a?b=c HTTP/1.0\r\nhost: x\r\n', false, 'http1'],
    ['an extension method', 'PROPFIND /dav HTTP/1.1\r\n', false, 'http1'],
    ['a partial method', 'GE', false, 'need-more'],
    ['a partial target', 'GET /very/long', false, 'need-more'],
    ['a partial version', 'GET / HTTP/1', false, 'need-more'],
    ['a lower-case method', 'get / HTTP/1.1\r\n', false, 'tcp'],
    ['HTTP/2 as a request line', 'GET / HTTP/2.0\r\n', false, 'tcp'],
    ['no target', 'GET  HTTP/1.1\r\n', false, 'tcp'],
    ['a bare LF', 'GET / HTTP/1.1\n', false, 'tcp'],
    ['TLS ClientHello', '\x16\x03\x01\x02\x00\x01\x00', false, 'tcp'],
    ['a text protocol', 'HELO mail.example\r\n', false, 'tcp'],
    ['SSH', 'SSH-2.0-OpenSSH_9.6\r\n', false, 'tcp'],
    ['a method too long', 'A'.repeat(21) + ' / HTTP/1.1\r\n', false, 'tcp'],
  ])('%s', (_name, head, ended, want) => {
    expect(buildProtocolGuess(b(head), ended)).toBe(want);
  });

  it('treats a well-formed but very long request line as HTTP/1 (the parser answers 414)', () => {
    expect(buildProtocolGuess(b('GET /' + 'a'.repeat(MAX_SNIFF_BYTES)))).toBe('http1');
  });
});

describe('sniffProtocol', () => {
  it('reads byte by byte until it knows, and puts every byte back', async () => {
    const [a, z] = createDuplexPair();
    const result = sniffProtocol(z);
    for (const c of 'GET /x HTTP/1.1\r\nhost: a\r\n\r\n') {
      a.write(c);
      await new Promise((r) => setImmediate(r));
    }
    expect(await result).toEqual({ protocol: 'http1', bytes: 17, empty: false });
    a.end();
    let all = '';
    for await (const chunk of z) all += String(chunk);
    expect(all).toBe('GET /x HTTP/1.1\r\nhost: a\r\n\r\n');
  });

  it('reports an empty tunnel as empty tcp', async () => {
    const [a, z] = createDuplexPair();
    const result = sniffProtocol(z);
    a.end();
    expect(await result).toEqual({ protocol: 'tcp', bytes: 0, empty: true });
  });
});
