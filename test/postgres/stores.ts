/**
 * Runs a suite once per store: `describeEachStore(name, body)` declares `name [memory]` and
 * `name [postgres]`, and inside each, `createStore()` (which the dispatcher harness and the HTTP support use
 * by default) returns a fresh, empty store of that kind. A Postgres store gets a schema of its own, migrated
 * on creation and dropped after the file, so every store is as isolated as a new `memoryStore()` is; its
 * LISTEN connection is given back after each test. The Postgres half follows db.ts's availability rule:
 * skipped loudly on a developer machine without Postgres, failing in CI.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe } from 'vitest';
import type { Store } from '../../src/index.js';
import { memoryStore } from '../../src/memory.js';
import { migrate, type PostgresStore, postgresStore } from '../../src/postgres.js';
import { describePostgres, newPool } from './db.js';

export type StoreKind = 'memory' | 'postgres';
export const STORE_KINDS: readonly StoreKind[] = ['memory', 'postgres'];

interface Backend {
  kind: StoreKind;
  create(): Promise<Store>;
}

const memoryBackend: Backend = { kind: 'memory', create: async () => memoryStore() };
let current: Backend = memoryBackend;

/** A fresh, empty store of the kind of the enclosing `describeEachStore` block (memory outside one). */
export function createStore(): Promise<Store> {
  return current.create();
}

/** The kind `createStore()` creates right now. */
export function currentStoreKind(): StoreKind {
  return current.kind;
}

/** Declares the suite `body` once per store kind; `kinds` narrows it (e.g. to memory-only tests). */
export function describeEachStore(
  name: string,
  body: (kind: StoreKind) => void,
  kinds: readonly StoreKind[] = STORE_KINDS,
): void {
  if (kinds.includes('memory')) describe(`${name} [memory]`, () => body('memory'));
  if (kinds.includes('postgres')) {
    describePostgres(`${name} [postgres]`, () => {
      const backend = postgresBackend();
      beforeAll(() => {
        current = backend;
      });
      afterAll(() => {
        current = memoryBackend;
      });
      body('postgres');
    });
  }
}

/** One pool per block; a migrated schema per store. */
function postgresBackend(): Backend {
  let pool: pg.Pool | undefined;
  const schemas: string[] = [];
  const open: PostgresStore[] = [];

  afterEach(async () => {
    await Promise.all(open.splice(0).map((store) => store.close()));
  });
  afterAll(async () => {
    if (pool === undefined) return;
    for (let i = 0; i < schemas.length; i += 50) {
      const names = schemas.slice(i, i + 50).map((schema) => `"${schema}"`);
      await pool.query(`DROP SCHEMA IF EXISTS ${names.join(', ')} CASCADE`);
    }
    await pool.end();
  });

  return {
    kind: 'postgres',
    async create() {
      pool ??= newPool(10);
      const schema = `zta_test_${randomBytes(6).toString('hex')}`;
      schemas.push(schema);
      await migrate(pool, { schema });
      const store = postgresStore({ pool, schema });
      open.push(store);
      return store;
    },
  };
}
