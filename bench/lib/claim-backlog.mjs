// The claim-cost backlog shared by bench/postgres.mjs and bench/lib/claim-io.mjs: a migrated scratch schema
// loaded in bulk, and completing what a claim took.

/**
 * Loads `webhooks` webhooks (ten sites) and `size` pending deliveries spread over them into the migrated
 * schema `s` (quoted), shaped like rows the library writes: random-looking ids (the library's are 128 random
 * bits), and `created_at` when the event was emitted. `fifo`: a backlog of first attempts, each due when it
 * was created, in the hour before `now`. `random`: a backlog of retries, created in the hour before that
 * and due at random times within the last hour (so due order and creation order are unrelated). Then
 * VACUUM ANALYZE.
 */
export async function loadClaimBacklog(pool, s, { size, webhooks, order, now }) {
  await pool.query(
    `INSERT INTO ${s}.webhooks (id, site_id, url, events, secret, active, created_at, updated_at)
     SELECT 'wh_' || g, 'site_' || (g % 10), 'https://receiver.example/' || g, ARRAY['pageview'], 'whsec_x',
       true, $1, $1
     FROM generate_series(1, $2::int) g`,
    [now, webhooks],
  );
  const created =
    order === 'fifo'
      ? `$3::timestamptz - interval '1 hour' + g * (interval '1 hour' / $1::int)`
      : `$3::timestamptz - interval '2 hours' + g * (interval '1 hour' / $1::int)`;
  const due = order === 'fifo' ? created : `$3::timestamptz - random() * interval '1 hour'`;
  await pool.query(
    `INSERT INTO ${s}.deliveries (id, webhook_id, site_id, event, body, status, attempts, next_attempt_at,
       created_at, updated_at)
     SELECT 'dlv_' || left(md5(g::text), 22), 'wh_' || (1 + g % $2::int), 'site_' || ((1 + g % $2::int) % 10),
       'pageview', '{"event":"pageview","data":{"path":"/"}}', 'pending', 0,
       ${due}, ${created}, ${created}
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
