import type { Pool, PoolClient } from 'pg';

/**
 * Runs `work` inside a READ COMMITTED transaction on a connection of its own, and gives the connection back
 * (closed, if the connection failed or the rollback did).
 *
 * READ COMMITTED whatever the session's default: both callers (a site's webhook limit, migrations) wait for
 * an advisory lock and then rely on their next statement seeing what the previous holder committed; under
 * REPEATABLE READ the snapshot would date from before the wait.
 *
 * pg-pool only listens for a client's 'error' events while the client is idle. A connection lost while it
 * is checked out (failover, restart, `pg_terminate_backend`) would otherwise be an unhandled 'error' event,
 * which ends the process; the statement in progress fails with it anyway.
 */
export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (error: Error): void => {
    broken = error;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
    try {
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackError: Error) => {
        broken ??= rollbackError;
      });
      throw error;
    }
  } finally {
    client.off('error', onError);
    client.release(broken ?? false);
  }
}
