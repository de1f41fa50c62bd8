// The claim-cost backlog shared by bench/postgres.mjs and bench/lib/claim-io.mjs: a migrated scratch schema
// loaded in bulk, and completing what a claim took.

/**
 * Loads `webhooks` webhooks (ten sites) and `size` pending deliveries spread over them into the migrated
 * schema `s` (quoted), due in the order created (`fifo`, as a backlog of first attempts is) or at random
 * times within the hour before `now` (`random`); then VACUUM ANALYZE.
 */
export async function loadClaimBacklog(pool, s, { size, webhooks, order, now }) {
  await pool.query(
    `INSERT INTO ${s}.webhooks (id, site_id, url, events, secret, active, created_at, updated_at)
     SELECT 'wh_' || g, 'site_' || (g % 10), 'https://receiver.example/' || g, ARRAY['pageview'], 'whsec_x',
       true, $1, $1
     FROM generate_series(1, $2::int) g`,
    [now, webhooks],
  );
  await pool.query(
    `INSERT INTO ${s}.deliveries (id, webhook_id, site_id, event, body, status, attempts, next_attempt_at,
       created_at, updated_at)
     SELECT 'dlv_' || g, 'wh_' || (1 + g % $2::int), 'site_' || ((1 + g % $2::int) % 10), 'pageview',
       '{"event":"pageview","data":{"path":"/"}}', 'pending', 0,
       ${order === 'fifo' ? `$3::timestamptz - interval '1 hour' + g * interval '1 microsecond'` : `$3::timestamptz - random() * interval '1 hour'`},
       $3, $3
     FROM generate_series(1, $1::int) g`,
    [size, webhooks, now],
  );
  await pool.query(`VACUUM ANALYZE ${s}.deliveries`);
}

/** Records one successful first attempt for every delivery of a claimed batch. */
export function completeAsSucceeded(store, batch, now) {
  return store.completeAttempts(
    batch.map((c) => ({
      attempt: {
        deliveryId: c.delivery.id,
        webhookId: c.webhook.id,
        attempt: 1,
        startedAt: now,
        durationMs: 1,
        statusCode: 200,
        errorCode: null,
        responseSnippet: 'OK',
        ok: true,
      },
      next: { status: 'succeeded' },
      maxConsecutiveFailures: 10,
    })),
  );
}
