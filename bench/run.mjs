// Builds the package, then runs every benchmark (or the ones named: `npm run bench -- verify dispatch`).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ALL = ['verify', 'transport', 'dispatch', 'memory-store', 'hostile', 'postgres', 'postgres-emit'];
const root = fileURLToPath(new URL('..', import.meta.url));
const names = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const chosen = names.length > 0 ? names : ALL;
for (const name of chosen) {
  if (!existsSync(new URL(`./${name}.mjs`, import.meta.url))) {
    console.error(`unknown benchmark "${name}"; choose from: ${ALL.join(', ')}`);
    process.exit(1);
  }
}

execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
for (const name of chosen) {
  console.log(`\n### bench/${name}.mjs\n`);
  // --expose-gc: the memory benchmarks read heap figures after a full collection.
  execFileSync(process.execPath, ['--expose-gc', `bench/${name}.mjs`], { cwd: root, stdio: 'inherit' });
}
