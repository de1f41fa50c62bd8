import { postgresStore } from '../../src/postgres.js';
import { testStore } from '../../src/testing.js';
import { describePostgres, useTestDatabase } from './db.js';

describePostgres('postgresStore conformance', () => {
  const db = useTestDatabase();
  testStore({
    create: async () => {
      await db.truncate();
      return postgresStore({ pool: db.pool, schema: db.schema });
    },
    // Typed as what create returns: no cast needed to close it.
    destroy: (store) => store.close(),
  });
});
