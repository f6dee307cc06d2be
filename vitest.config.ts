import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Integration tests start real daemons and move real bytes; give them room on a 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration files bind fixed loopback addresses per file; run files one at a time so they
    // neither collide nor starve each other of CPU.
    fileParallelism: false,
    reporters: ['default'],
  },
});
