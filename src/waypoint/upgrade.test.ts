/** The pure parts of upgrade handling, as tables. */
import type http from 'node:http';
import { describe, expect, it } from 'vitest';
import { buildPlainRequestHead, buildUpgradeKind } from './upgrade.js';

describe('buildUpgradeKind', () => {
  it.each([
    ['websocket', 'websocket'],
    ['WebSocket', 'websocket'],
    ['h2c', 'h2c'],
    ['foo/1, websocket', 'websocket'],
    ['h2c, foo', 'other'],
    ['TLS/1.2', 'other'],
    [undefined, 'other'],
  ])('Upgrade: %s → %s', (upgrade, kind) => {
    expect(buildUpgradeKind(upgrade === undefined ? {} : { upgrade })).toBe(kind);
  });
});

describe('buildPlainRequestHead', () => {
  const req = (rawHeaders: string[]) =>
    ({ method: 'POST', url: '/x?y=1', httpVersion: '1.1', rawHeaders }) as unknown as http.IncomingMessage;

  it('drops the h2c upgrade and keeps everything else, names as sent', () => {
    const head = buildPlainRequestHead(
      req([
        'Host',
        'svc:80',
        'Connection',
        'Upgrade, HTTP2-Settings, keep-alive',
        'Upgrade',
        'h2c',
        'HTTP2-Settings',
        'AAMAAABkAAQCAAAAAAIAAAAA',
        'Content-Length',
        '3',
      ]),
    ).toString('latin1');
    expect(head).toBe(
      'POST /x?y=1 HTTP/1.1\r\nHost: svc:80\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n',
    );
  });

  it('drops a Connection header that named only the upgrade', () => {
    const head = buildPlainRequestHead(req(['host', 'svc', 'connection', 'upgrade', 'upgrade', 'h2c']));
    expect(head.toString('latin1')).toBe('POST /x?y=1 HTTP/1.1\r\nhost: svc\r\n\r\n');
  });
});
