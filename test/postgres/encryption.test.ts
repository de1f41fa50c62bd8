// Secrets at rest: with `encryption`, the Postgres rows hold only AES-256-GCM ciphertext (read back raw
// here), real HTTPS deliveries still verify with the secret the owner was shown, rotation overlaps work,
// old key ids keep decrypting, `reencryptSecrets` moves rows (plaintext ones too) to the current key in
// batches, and a dispatcher without the key skips the attempt cleanly instead of crashing or leaking.

import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { secretCipher } from '../../src/core/secret-cipher.js';
import { Dispatcher, type SecretEncryption, type Store, WebhookManager } from '../../src/index.js';
import { memoryStore } from '../../src/memory.js';
import { verifyWebhook } from '../../src/verify.js';
import {
  capturingLogger,
  type LogLine,
  owner,
  pageview,
  receiver,
  SITE,
  setup,
} from '../dispatcher/harness.js';
import type { RecordedRequest } from '../support/receiver.js';
import { describePostgres, useTestDatabase } from './db.js';

const k1 = randomBytes(32);
const k2 = randomBytes(32);
const ENC_K1: SecretEncryption = { keys: { k1 }, current: 'k1' };
const ENC_BOTH: SecretEncryption = { keys: { k1, k2 }, current: 'k2' };
const authorize = (principal: typeof owner, siteId: string) => principal.sites.includes(siteId);

describePostgres('secrets at rest [postgres]', () => {
  const db = useTestDatabase();
  beforeEach(() => db.truncate());

  const rawRows = async (): Promise<{ id: string; secret: string; previous_secret: string | null }[]> =>
    (await db.pool.query(`select id, secret, previous_secret from "${db.schema}".webhooks order by id`)).rows;

  const expectHidden = (raw: string, secret: string) => {
    expect(raw).not.toContain(secret);
    expect(raw).not.toContain(secret.slice('whsec_'.length));
  };

  async function deliverOne(dispatcher: Dispatcher, target: Awaited<ReturnType<typeof receiver>>) {
    const before = target.requests.length;
    await dispatcher.emit(pageview());
    await dispatcher.runDue();
    return (await target.waitFor(before + 1))[before]!;
  }

  const signedBy = (request: RecordedRequest, secret: string, header = 'x-zta-signature') =>
    verifyWebhook(request.body, request.headers[header], secret);

  it('stores only ciphertext, and deliveries verify with the secret the owner was shown', async () => {
    const target = await receiver();
    const { dispatcher, subscribe, logs } = await setup({ store: db.store(), encryption: ENC_K1 });
    const webhook = await subscribe(target.url());

    const rows = await rawRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.secret).toMatch(/^zta:enc:v1:k1:/);
    expectHidden(JSON.stringify(rows), webhook.secret);

    const request = await deliverOne(dispatcher, target);
    expect(signedBy(request, webhook.secret)).toBe(true);
    expectHidden(JSON.stringify(logs), webhook.secret);
  });

  it('rotation with overlap works encrypted: both secrets sealed, both signatures verify', async () => {
    const target = await receiver();
    const { dispatcher, subscribe, manager } = await setup({ store: db.store(), encryption: ENC_K1 });
    const webhook = await subscribe(target.url());
    const { webhook: rotated } = await manager.rotateSecret(owner, webhook.id, { overlapSeconds: 600 });

    const [row] = await rawRows();
    expect(row!.secret).toMatch(/^zta:enc:v1:k1:/);
    expect(row!.previous_secret).toMatch(/^zta:enc:v1:k1:/);
    expectHidden(JSON.stringify(row), webhook.secret);
    expectHidden(JSON.stringify(row), rotated.secret);

    const request = await deliverOne(dispatcher, target);
    expect(signedBy(request, webhook.secret)).toBe(true);
    expect(signedBy(request, rotated.secret, 'x-zta-signature-next')).toBe(true);
  });

  it('keeps decrypting the old key id after current changes; reencryptSecrets moves every row in batches', async () => {
    const target = await receiver();
    const store = db.store();
    const { subscribe } = await setup({ store, encryption: ENC_K1 });
    const shown = new Map<string, string>();
    for (let i = 0; i < 4; i++) {
      const webhook = await subscribe(target.url(`/k1/${i}`));
      shown.set(webhook.id, webhook.secret);
    }
    // A row from before encryption was turned on, with a plaintext previous secret as well.
    const plainManager = new WebhookManager({ store, authorize, allowPrivateNetworks: true });
    const plain = (
      await plainManager.create(owner, { siteId: SITE, url: target.url('/plain'), events: ['pageview'] })
    ).webhook;
    const plainRotated = (await plainManager.rotateSecret(owner, plain.id, { overlapSeconds: 600 })).webhook;
    shown.set(plain.id, plainRotated.secret);
    expect((await rawRows()).find((row) => row.id === plain.id)).toMatchObject({
      secret: plainRotated.secret,
      previous_secret: plain.secret,
    });

    // current is now k2: k1 rows still decrypt and deliver; new secrets are sealed with k2.
    const { dispatcher, subscribe: subscribeK2 } = await setup({ store, encryption: ENC_BOTH });
    const fresh = await subscribeK2(target.url('/k2'));
    shown.set(fresh.id, fresh.secret);
    const before = await rawRows();
    expect(before.filter((row) => row.secret.startsWith('zta:enc:v1:k1:'))).toHaveLength(4);
    expect(before.filter((row) => row.secret.startsWith('zta:enc:v1:k2:'))).toHaveLength(1);
    await dispatcher.emit(pageview());
    await dispatcher.runDue();
    const delivered = await target.waitFor(6);
    for (const request of delivered) {
      const id = String(request.headers['x-zta-webhook-id']);
      const secret = id === plain.id ? plain.secret : shown.get(id)!; // plaintext row: in its overlap
      expect(signedBy(request, secret)).toBe(true);
    }

    // Re-encrypt in batches of 2.
    const limits: number[] = [];
    const listAll = store.listAllWebhooks!.bind(store);
    const counting: Store = {
      ...store,
      listAllWebhooks: (options) => {
        limits.push(options.limit);
        return listAll(options);
      },
    };
    const operator = new WebhookManager({ store: counting, authorize: () => false, encryption: ENC_BOTH });
    expect(await operator.reencryptSecrets({ batchSize: 2 })).toEqual({ scanned: 6, updated: 5 });
    expect(limits).toEqual([2, 2, 2, 2]);
    const after = await rawRows();
    for (const row of after) {
      expect(row.secret).toMatch(/^zta:enc:v1:k2:/);
      if (row.previous_secret !== null) expect(row.previous_secret).toMatch(/^zta:enc:v1:k2:/);
    }
    expect(after.find((row) => row.id === plain.id)!.previous_secret).not.toBeNull();
    for (const secret of [...shown.values(), plain.secret]) expectHidden(JSON.stringify(after), secret);
    expect(await operator.reencryptSecrets()).toEqual({ scanned: 6, updated: 0 });

    // k1 can now be retired: a dispatcher with k2 alone delivers to every webhook, correctly signed.
    const { dispatcher: k2Only } = await setup({ store, encryption: { keys: { k2 }, current: 'k2' } });
    await k2Only.emit(pageview());
    await k2Only.runDue();
    const all = await target.waitFor(12);
    for (const request of all.slice(6)) {
      const id = String(request.headers['x-zta-webhook-id']);
      expect(signedBy(request, id === plain.id ? plain.secret : shown.get(id)!)).toBe(true);
    }
  });

  it('a dispatcher without the key does not send: it logs an error without secrets, and a keyed one delivers later', async () => {
    const target = await receiver();
    const store = db.store();
    const { subscribe, manager } = await setup({ store, encryption: ENC_K1 });
    const webhook = await subscribe(target.url());
    const logs: LogLine[] = [];
    const wrong: (SecretEncryption | undefined)[] = [
      undefined,
      { keys: { k2 }, current: 'k2' },
      { keys: { k1: k2 }, current: 'k1' },
    ];
    for (const [index, encryption] of wrong.entries()) {
      logs.length = 0;
      const keyless = new Dispatcher({
        store,
        allowPrivateNetworks: true,
        tls: { ca: target.caCert },
        leaseMs: 100,
        timeoutMs: 50,
        logger: capturingLogger(logs),
        ...(encryption && { encryption }),
      });
      await keyless.emit(pageview());
      // Nothing is sent; earlier rounds' deliveries come back once their lease has run out (one error each).
      expect(await keyless.runDue()).toEqual({ attempted: 0 });
      await keyless.stop();
      expect(target.requests).toHaveLength(0);
      const errors = logs.filter((line) => line.level === 'error');
      expect(errors).toHaveLength(index + 1);
      expect(errors[0]!.message).toMatch(/cannot decrypt webhook secret/);
      expect(errors[0]!.fields).toMatchObject({
        webhookId: webhook.id,
        error: expect.stringMatching(/Cannot decrypt/),
      });
      expectHidden(JSON.stringify(logs), webhook.secret);
      const [latest] = (await manager.deliveries(owner, { webhookId: webhook.id })).deliveries;
      expect(latest!.status).toBe('delivering');
      expect(latest!.attempts).toEqual([]);
      await new Promise((resolve) => setTimeout(resolve, 150)); // the lease runs out
    }
    expect((await store.getWebhook(webhook.id))!.consecutiveFailures).toBe(0);

    const { dispatcher } = await setup({ store, encryption: ENC_K1 });
    await dispatcher.runDue();
    const requests = await target.waitFor(3);
    for (const request of requests) expect(signedBy(request, webhook.secret)).toBe(true);
  });
});

describe('reencryptSecrets', () => {
  /** A manager without encryption and one webhook it created: its secret is stored in plaintext. */
  const createdWithoutEncryption = async (store: Store) => {
    const plain = new WebhookManager({ store, authorize, allowPrivateNetworks: true });
    const { webhook } = await plain.create(owner, {
      siteId: SITE,
      url: 'https://example.com/h',
      events: ['pageview'],
    });
    return { plain, webhook };
  };

  it('needs a store with listAllWebhooks, and validates batchSize', async () => {
    const store = memoryStore();
    const bare: Store = { ...store, listAllWebhooks: undefined };
    const manager = new WebhookManager({ store: bare, authorize: () => true, encryption: ENC_K1 });
    await expect(manager.reencryptSecrets()).rejects.toThrow(/listAllWebhooks/);
    const ok = new WebhookManager({ store, authorize: () => true, encryption: ENC_K1 });
    await expect(ok.reencryptSecrets({ batchSize: 0 })).rejects.toThrow(TypeError);
    expect(await ok.reencryptSecrets()).toEqual({ scanned: 0, updated: 0 });
  });

  it('without encryption changes nothing; with it, the memory store holds ciphertext too', async () => {
    const store = memoryStore();
    const { plain, webhook } = await createdWithoutEncryption(store);
    expect(await plain.reencryptSecrets()).toEqual({ scanned: 1, updated: 0 });
    const sealed = new WebhookManager({ store, authorize, encryption: ENC_K1 });
    expect(await sealed.reencryptSecrets()).toEqual({ scanned: 1, updated: 1 });
    const record = (await store.getWebhook(webhook.id))!;
    expect(record.secret).toMatch(/^zta:enc:v1:k1:/);
    expect(JSON.stringify(record)).not.toContain(webhook.secret.slice('whsec_'.length));
  });

  it('lets a rotation that lands between its read and its write win', async () => {
    const store = memoryStore();
    const { webhook } = await createdWithoutEncryption(store);
    const owners = new WebhookManager({ store, authorize, encryption: ENC_K1 });
    let rotated: string | undefined;
    // The operator's re-read, just before its write, is where the owner's rotation lands.
    const racing: Store = {
      ...store,
      getWebhook: async (id) => {
        const record = await store.getWebhook(id);
        if (rotated === undefined) rotated = (await owners.rotateSecret(owner, id)).webhook.secret;
        return record;
      },
    };
    const operator = new WebhookManager({ store: racing, authorize: () => false, encryption: ENC_K1 });
    expect(await operator.reencryptSecrets()).toEqual({ scanned: 1, updated: 0 });
    const stored = (await store.getWebhook(webhook.id))!;
    // The secret the owner was just shown is the one that signs; the original is only the previous one.
    const cipher = secretCipher(ENC_K1);
    expect(rotated).toMatch(/^whsec_/);
    expect(cipher.open(stored.secret)).toBe(rotated);
    expect(cipher.open(stored.previousSecret!)).toBe(webhook.secret);
  });

  it('lets a revocation of the previous secret that lands between its read and its write win', async () => {
    const store = memoryStore();
    const { plain, webhook } = await createdWithoutEncryption(store);
    await plain.rotateSecret(owner, webhook.id, { overlapSeconds: 600 });
    let revoked = false;
    const racing: Store = {
      ...store,
      getWebhook: async (id) => {
        const record = await store.getWebhook(id);
        if (!revoked) {
          revoked = true;
          await plain.revokePreviousSecret(owner, id);
        }
        return record;
      },
    };
    const operator = new WebhookManager({ store: racing, authorize: () => false, encryption: ENC_K1 });
    expect(await operator.reencryptSecrets()).toEqual({ scanned: 1, updated: 0 });
    const stored = (await store.getWebhook(webhook.id))!;
    // The revoked secret stays gone (before, the write brought it back, sealed).
    expect(stored).toMatchObject({ previousSecret: null, previousSecretExpiresAt: null });
    // The webhook is left for a later run, which seals it.
    expect(await operator.reencryptSecrets()).toEqual({ scanned: 1, updated: 1 });
    expect((await store.getWebhook(webhook.id))!.secret).toMatch(/^zta:enc:v1:k1:/);
  });
});
