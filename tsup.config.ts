import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    memory: 'src/memory.ts',
    postgres: 'src/postgres.ts',
    verify: 'src/verify.ts',
    'verify-web': 'src/verify-web.ts',
    express: 'src/express.ts',
    testing: 'src/testing.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  platform: 'node',
  splitting: true,
  treeshake: true,
  external: ['pg', 'express', 'vitest'],
  // Keep `node:crypto` etc. as written: tsup 8 strips the prefix by default, which makes edge/worker
  // runtimes and browser-targeting bundlers treat `crypto` as an npm package.
  removeNodeProtocol: false,
});
