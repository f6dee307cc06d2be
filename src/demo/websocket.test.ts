/** The RFC 6455 codec of the sample apps, without sockets. */
import { describe, expect, it } from 'vitest';
import { buildAcceptKey, encodeFrame, FrameReader, OPCODE } from './websocket.js';

describe('WebSocket codec', () => {
  it('computes the accept key of RFC 6455 section 1.3', () => {
    expect(buildAcceptKey('dGhlIHNhbXBsZSBub25jZQ==')).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });

  it.each([
    ['empty', 0],
    ['7-bit length', 125],
    ['16-bit length', 126],
    ['16-bit length, max', 65_535],
    ['64-bit length', 65_536],
  ])('round-trips a %s payload, masked (client) and unmasked (server)', (_n, size) => {
    const payload = Buffer.from(Array.from({ length: size }, (_, i) => i % 251));
    for (const mask of [true, false]) {
      const frame = encodeFrame(OPCODE.binary, payload, mask);
      expect(((frame[1] ?? 0) & 0x80) !== 0).toBe(mask);
      const frames = new FrameReader().feed(frame);
      expect(frames).toHaveLength(1);
      expect(frames[0]).toMatchObject({ fin: true, opcode: OPCODE.binary });
      expect(frames[0]?.payload.equals(payload)).toBe(true);
    }
  });

  it('keeps a partial frame until the rest arrives, and splits frames that arrive together', () => {
    const a = encodeFrame(OPCODE.text, Buffer.from('first'), true);
    const b = encodeFrame(OPCODE.text, Buffer.alloc(300, 0x61), true);
    const both = Buffer.concat([a, b]);
    const reader = new FrameReader();
    const seen: string[] = [];
    for (let i = 0; i < both.length; i += 7)
      for (const f of reader.feed(both.subarray(i, i + 7))) seen.push(f.payload.toString());
    expect(seen).toEqual(['first', 'a'.repeat(300)]);
  });

  it('refuses a frame longer than JavaScript can index', () => {
    const head = Buffer.from([0x82, 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    expect(() => new FrameReader().feed(head)).toThrow(/too large/);
  });
});
