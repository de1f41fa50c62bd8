// `@zta/webhooks/postgres`: the durable, multi-process store. `pg` is a peer dependency used only through
// the Pool the application passes in; nothing here loads it.
export {
  type MigrateOptions,
  type MigrateResult,
  type Migration,
  migrate,
  migrationSql,
  migrations,
  SCHEMA_VERSION,
} from './adapters/postgres/migrations.js';
export { channelName, DEFAULT_SCHEMA } from './adapters/postgres/sql.js';
export {
  DEFAULT_PRUNE_BATCH_SIZE,
  DEFAULT_RETENTION_MS,
  type PostgresStore,
  type PostgresStoreOptions,
  type PruneOptions,
  postgresStore,
} from './adapters/postgres/store.js';
