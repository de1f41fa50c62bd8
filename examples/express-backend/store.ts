/**
 * The backend's store: memory by default (zero setup, one process, gone on exit), Postgres when a
 * connection string is given (durable; any number of backend processes can share it).
 */
import type { Store } from '../../src/index.js'; // @zta/webhooks
import { memoryStore } from '../../src/memory.js'; // @zta/webhooks/memory

export interface OpenedStore {
  store: Store;
  kind: 'memory' | 'postgres';
  /** Closes what `openStore` opened (the Postgres store's listener, then its pool). */
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** A `postgres://` URL; without it, the memory store. */
  databaseUrl?: string | undefined;
  /** Postgres schema for the tables; default `zta_webhooks`. */
  schema?: string | undefined;
  onError?: (error: unknown) => void;
}

export async function openStore(options: OpenStoreOptions = {}): Promise<OpenedStore> {
  if (!options.databaseUrl) return { store: memoryStore(), kind: 'memory', close: async () => {} };

  // Loaded only when used: `pg` is an optional peer dependency of @zta/webhooks.
  const { default: pg } = await import('pg');
  const { migrate, postgresStore } = await import('../../src/postgres.js'); // @zta/webhooks/postgres
  const onError = options.onError ?? ((error: unknown) => console.error('postgres:', error));
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: 10 });
  pool.on('error', onError); // an idle client that loses its connection must not crash the process
  const schema = options.schema ? { schema: options.schema } : {};
  try {
    // Creates or upgrades the tables; safe to run on every start, from several processes at once.
    await migrate(pool, schema);
  } catch (error) {
    await pool.end();
    throw error;
  }
  const store = postgresStore({ pool, ...schema, onError });
  return {
    store,
    kind: 'postgres',
    async close() {
      await store.close();
      await pool.end();
    },
  };
}
