/**
 * The package as users get it: build, `npm pack`, unpack the tarball into throwaway projects and load every
 * entry point with plain `node`, as CommonJS (`require`) and as ESM (`import`). Nothing is installed from
 * the registry: each project gets the tarball extracted into node_modules/@zta/webhooks and symlinks to
 * this repo's copies of the packages a user would have installed (package.json `dependencies`, plus the
 * peers an entry point needs). The unpacked package's real path is outside the repo, so a dependency
 * missing from `dependencies` fails here instead of being found in the repo's node_modules.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

type Kind = 'function' | 'object' | 'string' | 'number' | 'boolean' | { array: number };

interface EntryExpectation {
  /** Names the entry point must export (more are allowed), with the kind of value each one is. */
  exports: Record<string, Kind>;
  /**
   * Packages beyond `dependencies` that a user of this entry point has installed (optional peers, their
   * own vitest). Entry points without `uses` are loaded in a project that has none of them.
   */
  uses?: readonly string[];
  /** If set, the built files of this entry point (and the chunks they load) may import only these. */
  onlyImports?: readonly string[];
}

/** One row per subpath of package.json `exports` (a test fails when the two disagree). */
const ENTRIES: Record<string, EntryExpectation> = {
  '.': {
    exports: {
      WebhookManager: 'function',
      Dispatcher: 'function',
      WebhookError: 'function',
      createWebhooksApi: 'function',
      toNodeHandler: 'function',
      EVENT_TYPES: { array: 5 },
    },
  },
  './memory': { exports: { memoryStore: 'function' } },
  // Imports pg only as types: the user passes the pool.
  './postgres': { exports: { postgresStore: 'function', migrate: 'function', migrationSql: 'function' } },
  './verify': {
    exports: {
      verifyWebhook: 'function',
      signPayload: 'function',
      verifyStandardWebhook: 'function',
      signStandardPayload: 'function',
      verifyWebhookAsync: 'function',
      verifyStandardWebhookAsync: 'function',
    },
    onlyImports: ['node:crypto'],
  },
  // WebCrypto only: no node: modules at all.
  './verify/web': {
    exports: { verifyWebhookAsync: 'function', verifyStandardWebhookAsync: 'function' },
    onlyImports: [],
  },
  // Imports express only as types: it must load without express installed.
  './express': { exports: { webhooksRouter: 'function', verifyWebhookMiddleware: 'function' } },
  // Imports vitest, which the adapter author running the suite has installed (ESM-only, like vitest).
  './testing': { exports: { testStore: 'function' }, uses: ['vitest'] },
};

/** Paths that must never be in the tarball. */
const FORBIDDEN_PREFIXES = [
  'src/',
  'test/',
  '.tmp/',
  '.ci/',
  'scripts/',
  'bench/',
  'examples/',
  'node_modules/',
  'coverage/',
];

interface Target {
  types: string;
  default: string;
}
interface ConditionalEntry {
  import?: Target;
  require?: Target;
}
interface PackageJson {
  name: string;
  exports: Record<string, ConditionalEntry | string>;
  dependencies?: Record<string, string>;
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;
const SUBPATHS = Object.entries(PKG.exports)
  .filter((pair): pair is [string, ConditionalEntry] => typeof pair[1] === 'object')
  .map(([subpath]) => subpath);

function conditions(subpath: string): ConditionalEntry {
  const entry = PKG.exports[subpath];
  if (typeof entry !== 'object') throw new Error(`exports["${subpath}"] is not a conditional entry`);
  return entry;
}

function specifier(subpath: string): string {
  return subpath === '.' ? PKG.name : `${PKG.name}${subpath.slice(1)}`;
}

function describeKind(kind: Kind): { type: string; length?: number } {
  return typeof kind === 'string' ? { type: kind } : { type: 'array', length: kind.array };
}

// Prints { resolved, exports: { name: { type, length? } } } for the module named by argv[1].
const DESCRIBE = [
  'const out = { resolved, exports: {} };',
  'for (const [name, value] of Object.entries(m)) {',
  "  if (name === '__esModule') continue;",
  "  out.exports[name] = Array.isArray(value) ? { type: 'array', length: value.length } : { type: typeof value };",
  '}',
  'process.stdout.write(JSON.stringify(out));',
].join('\n');
const CJS_PROBE = [
  'const spec = process.argv[1];',
  'const m = require(spec);',
  'const resolved = require.resolve(spec);',
  DESCRIBE,
].join('\n');
const ESM_PROBE = [
  "import { fileURLToPath } from 'node:url';",
  'const spec = process.argv[1];',
  'const m = await import(spec);',
  'const resolved = fileURLToPath(import.meta.resolve(spec));',
  DESCRIBE,
].join('\n');

interface ProbeResult {
  resolved: string;
  exports: Record<string, { type: string; length?: number }>;
}

// The child sees no NODE_PATH (it could find the repo's node_modules) and no NODE_OPTIONS (loaders).
const { NODE_PATH: _nodePath, NODE_OPTIONS: _nodeOptions, ...childEnv } = process.env;

function runNode(cwd: string, args: string[]) {
  return spawnSync(process.execPath, args, { cwd, env: childEnv, encoding: 'utf8', timeout: 30_000 });
}

function probe(cwd: string, format: 'cjs' | 'esm', subpath: string): ProbeResult {
  const args =
    format === 'cjs'
      ? ['-e', CJS_PROBE, specifier(subpath)]
      : ['--input-type=module', '-e', ESM_PROBE, specifier(subpath)];
  const result = runNode(cwd, args);
  if (result.status !== 0) {
    throw new Error(`loading ${specifier(subpath)} (${format}) failed:\n${result.stderr || result.error}`);
  }
  return JSON.parse(result.stdout) as ProbeResult;
}

/** Bare module specifiers imported by `file` and by the package files it imports relatively. */
function importedModules(file: string, seen = new Set<string>()): Set<string> {
  const found = new Set<string>();
  if (seen.has(file)) return found;
  seen.add(file);
  const code = readFileSync(file, 'utf8');
  const patterns = [
    /\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const match of code.matchAll(pattern)) {
      const spec = match[1]!;
      if (spec.startsWith('.')) {
        for (const inner of importedModules(resolve(dirname(file), spec), seen)) found.add(inner);
      } else {
        found.add(spec);
      }
    }
  }
  return found;
}

describe('the packed tarball', { timeout: 60_000 }, () => {
  let tmp: string;
  let tarball: string;
  let files: string[];
  const projects = new Map<string, string>();

  function makeProject(subpath: string): string {
    const name = subpath === '.' ? 'root' : subpath.slice(2).replaceAll('/', '-');
    const dir = join(tmp, `consumer-${name}`);
    const pkgDir = join(dir, 'node_modules', ...PKG.name.split('/'));
    mkdirSync(pkgDir, { recursive: true });
    writeFileSync(
      join(dir, 'package.json'),
      `${JSON.stringify({ name: `consumer-${name}`, private: true, type: 'commonjs' }, null, 2)}\n`,
    );
    execFileSync('tar', ['-xzf', tarball, '-C', pkgDir, '--strip-components=1']);
    const links = new Set([...Object.keys(PKG.dependencies ?? {}), ...(ENTRIES[subpath]?.uses ?? [])]);
    for (const dep of links) {
      const source = join(ROOT, 'node_modules', dep);
      if (!existsSync(source)) throw new Error(`${dep} is not installed in ${join(ROOT, 'node_modules')}`);
      const target = join(dir, 'node_modules', dep);
      mkdirSync(dirname(target), { recursive: true });
      symlinkSync(source, target, 'dir');
    }
    return realpathSync(dir);
  }

  function project(subpath: string): string {
    let dir = projects.get(subpath);
    if (!dir) {
      dir = makeProject(subpath);
      projects.set(subpath, dir);
    }
    return dir;
  }

  function installed(dir: string, path: string): string {
    return join(dir, 'node_modules', ...PKG.name.split('/'), path);
  }

  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'zta-webhooks-tarball-'));
    execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'pipe' });
    const packDir = join(tmp, 'pack');
    mkdirSync(packDir);
    execFileSync('npm', ['pack', '--pack-destination', packDir], { cwd: ROOT, stdio: 'pipe' });
    const packed = readdirSync(packDir).filter((file) => file.endsWith('.tgz'));
    expect(packed).toHaveLength(1);
    tarball = join(packDir, packed[0]!);
    files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((line) => line.replace(/^package\//, ''));
  }, 120_000);

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('has a row in ENTRIES for every subpath in package.json exports', () => {
    expect(Object.keys(ENTRIES).sort()).toEqual([...SUBPATHS].sort());
  });

  it('ships no sources, tests or scratch files', () => {
    const forbidden = files.filter((file) => FORBIDDEN_PREFIXES.some((prefix) => file.startsWith(prefix)));
    expect(forbidden).toEqual([]);
    expect(files).toContain('package.json');
  });

  it.each(SUBPATHS)(
    'ships every file exports["%s"] points at, with .d.ts for import and .d.cts for require',
    (subpath) => {
      const entry = conditions(subpath);
      expect(entry.import, `exports["${subpath}"] has no import condition`).toBeDefined();
      const targets = [entry.import, entry.require].filter(
        (target): target is Target => target !== undefined,
      );
      for (const target of targets) {
        expect(files).toContain(target.types.replace(/^\.\//, ''));
        expect(files).toContain(target.default.replace(/^\.\//, ''));
      }
      expect(entry.import?.types).toMatch(/^\.\/dist\/.+\.d\.ts$/);
      expect(entry.import?.default).toMatch(/^\.\/dist\/.+\.js$/);
      if (entry.require) {
        expect(entry.require.types).toMatch(/^\.\/dist\/.+\.d\.cts$/);
        expect(entry.require.default).toMatch(/^\.\/dist\/.+\.cjs$/);
      }
    },
  );

  describe.each(SUBPATHS)('%s', (subpath) => {
    const expected = ENTRIES[subpath] ?? { exports: {} };
    const want = Object.fromEntries(
      Object.entries(expected.exports).map(([name, kind]) => [name, describeKind(kind)]),
    );

    it('loads with import() from the ESM build and has the expected exports', () => {
      const dir = project(subpath);
      const result = probe(dir, 'esm', subpath);
      expect(result.resolved).toBe(installed(dir, conditions(subpath).import!.default));
      expect(result.exports).toMatchObject(want);
    });

    const requireTarget = conditions(subpath).require;
    if (requireTarget) {
      it('loads with require() from the CJS build, with the same exports as the ESM build', () => {
        const dir = project(subpath);
        const cjs = probe(dir, 'cjs', subpath);
        expect(cjs.resolved).toBe(installed(dir, requireTarget.default));
        expect(cjs.exports).toMatchObject(want);
        expect(Object.keys(cjs.exports).sort()).toEqual(
          Object.keys(probe(dir, 'esm', subpath).exports).sort(),
        );
      });
    } else {
      it('is ESM-only: require() is refused by the exports map', () => {
        const result = runNode(project(subpath), ['-e', `require(${JSON.stringify(specifier(subpath))})`]);
        expect(result.status).not.toBe(0);
        expect(result.stderr).toContain('ERR_PACKAGE_PATH_NOT_EXPORTED');
      });
    }

    const allowed = expected.onlyImports;
    if (allowed) {
      it(`imports nothing but ${allowed.join(', ')} in its built files and chunks`, () => {
        const dir = project(subpath);
        const entry = conditions(subpath);
        for (const target of [entry.import, entry.require]) {
          if (!target) continue;
          const modules = [...importedModules(installed(dir, target.default))];
          expect(modules.filter((name) => !allowed.includes(name))).toEqual([]);
        }
      });
    }
  });
});
