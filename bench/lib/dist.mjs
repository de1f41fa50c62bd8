// The built package (dist/) that the benchmarks load.
import { existsSync } from 'node:fs';

/** Exits with a message unless `dist/<entry>.js` exists for every entry: the package must be built first. */
export function requireDist(script, ...entries) {
  for (const entry of entries) {
    if (!existsSync(new URL(`../../dist/${entry}.js`, import.meta.url))) {
      console.error(`bench/${script}: dist/${entry}.js is missing. Build the package first:  npm run build`);
      process.exit(1);
    }
  }
}
