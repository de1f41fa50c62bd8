import type { Store } from '../adapters/types.js';
import { MESSAGES, WebhookError } from './errors.js';
import { newId, newSecret } from './ids.js';
import type { SignatureScheme, WebhookPatch, WebhookRecord } from './records.js';
import {
  createWebhookSchema,
  deliveryQuerySchema,
  parse,
  rotateSecretSchema,
  siteIdSchema,
  updateWebhookSchema,
  webhookIdSchema,
} from './schemas.js';
import { type SecretCipher, type SecretEncryption, secretCipher } from './secret-cipher.js';
import { type Delivery, toDelivery, toWebhook, type Webhook, type WebhookWithSecret } from './views.js';

export const DEFAULT_MAX_WEBHOOKS_PER_SITE = 10;
/** Rotations of one webhook racing this one that it yields to before giving up with a 409. */
const ROTATION_TRIES = 5;

export type Authorize<P> = (principal: P, siteId: string) => boolean | Promise<boolean>;

export interface WebhookManagerOptions<P> {
  store: Store;
  /** Whether `principal` owns (may manage) `siteId`. */
  authorize: Authorize<P>;
  /** Allow URLs that point at loopback, private or reserved addresses. For tests and local demos only. */
  allowPrivateNetworks?: boolean;
  maxWebhooksPerSite?: number;
  now?: () => Date;
  /**
   * Encrypt secrets at rest (AES-256-GCM): `secret` and `previousSecret` are sealed before the store sees
   * them, in any store. Give the dispatcher the same keys. Without it, secrets are stored as they are.
   */
  encryption?: SecretEncryption;
}

export interface ReencryptSecretsOptions {
  /** Webhooks read (and rewritten) per step. Default 100. */
  batchSize?: number;
}

export interface CreateWebhookInput {
  siteId: string;
  url: string;
  events: readonly string[];
  description?: string | null;
  /** Non-empty, known schemes, no duplicates; `null` or absent: the dispatcher's default. */
  signatureSchemes?: readonly SignatureScheme[] | null;
}

export interface UpdateWebhookInput {
  url?: string;
  events?: readonly string[];
  description?: string | null;
  active?: boolean;
  /** `null` goes back to the dispatcher's default. */
  signatureSchemes?: readonly SignatureScheme[] | null;
}

export interface RotateSecretOptions {
  /**
   * How long the previous secret keeps signing deliveries next to the new one, in whole seconds: 0 (replace
   * at once) to 2,592,000 (30 days). Default 86,400 (a day).
   */
  overlapSeconds?: number;
}

export interface DeliveriesInput {
  siteId?: string;
  webhookId?: string;
  status?: string;
  since?: string | Date;
  limit?: number | string;
  cursor?: string;
}

/** The webhook registry: CRUD, limits, validation and ownership. Every call names the acting principal. */
export class WebhookManager<P = unknown> {
  readonly #store: Store;
  readonly #authorize: Authorize<P>;
  readonly #maxPerSite: number;
  readonly #now: () => Date;
  readonly #cipher: SecretCipher;
  readonly #createSchema: ReturnType<typeof createWebhookSchema>;
  readonly #updateSchema: ReturnType<typeof updateWebhookSchema>;

  constructor(options: WebhookManagerOptions<P>) {
    this.#store = options.store;
    this.#authorize = options.authorize;
    this.#maxPerSite = options.maxWebhooksPerSite ?? DEFAULT_MAX_WEBHOOKS_PER_SITE;
    // Checked here: Postgres stores the limit's count as an integer, so anything else (Infinity, 2.5)
    // would make every create fail there, while the memory store took it.
    if (!Number.isInteger(this.#maxPerSite) || this.#maxPerSite < 1 || this.#maxPerSite > 2 ** 31 - 1) {
      throw new TypeError('maxWebhooksPerSite must be a positive integer (at most 2147483647)');
    }
    this.#now = options.now ?? (() => new Date());
    this.#cipher = secretCipher(options.encryption);
    const allowPrivate = options.allowPrivateNetworks ?? false;
    this.#createSchema = createWebhookSchema(allowPrivate);
    this.#updateSchema = updateWebhookSchema(allowPrivate);
  }

  async create(principal: P, input: CreateWebhookInput): Promise<{ webhook: WebhookWithSecret }> {
    const { siteId, url, events, description, signatureSchemes } = parse(this.#createSchema, input);
    await this.#requireSite(principal, siteId);
    const now = this.#now();
    const secret = newSecret();
    const record: WebhookRecord = {
      id: newId('wh'),
      siteId,
      url,
      events,
      description: description ?? null,
      secret: this.#cipher.seal(secret),
      previousSecret: null,
      previousSecretExpiresAt: null,
      signatureSchemes: signatureSchemes ?? null,
      active: true,
      disabledReason: null,
      consecutiveFailures: 0,
      createdAt: now,
      updatedAt: now,
      lastTriggered: null,
    };
    const outcome = await this.#store.createWebhook(record, { maxPerSite: this.#maxPerSite });
    if (outcome === 'limit_reached') {
      throw new WebhookError('webhook_limit_reached', `Maximum ${this.#maxPerSite} webhooks per site`);
    }
    return { webhook: { ...toWebhook(record, now), secret } };
  }

  async list(principal: P, siteId: string): Promise<{ webhooks: Webhook[] }> {
    const site = parse(siteIdSchema, siteId);
    await this.#requireSite(principal, site);
    const records = await this.#store.listWebhooks(site);
    const now = this.#now();
    return { webhooks: records.map((record) => toWebhook(record, now)) };
  }

  async get(principal: P, id: string): Promise<{ webhook: Webhook }> {
    return { webhook: toWebhook(await this.#requireWebhook(principal, id), this.#now()) };
  }

  /**
   * Changes url, events, description, signature schemes or `active`. Re-enabling clears the failure count
   * and reason.
   */
  async update(principal: P, id: string, input: UpdateWebhookInput): Promise<{ webhook: Webhook }> {
    const changes = parse(this.#updateSchema, input);
    const current = await this.#requireWebhook(principal, id);
    const patch: WebhookPatch = { updatedAt: this.#now() };
    if (changes.url !== undefined) patch.url = changes.url;
    if (changes.events !== undefined) patch.events = changes.events;
    if (changes.description !== undefined) patch.description = changes.description;
    if (changes.signatureSchemes !== undefined) patch.signatureSchemes = changes.signatureSchemes;
    if (changes.active === true && !current.active) {
      Object.assign(patch, { active: true, disabledReason: null, consecutiveFailures: 0 });
    } else if (changes.active === false && current.active) {
      Object.assign(patch, { active: false, disabledReason: 'Disabled by user' });
    }
    const updated = await this.#store.updateWebhook(current.id, patch);
    if (updated === null) throw new WebhookError('webhook_not_found', MESSAGES.webhookNotFound);
    return { webhook: toWebhook(updated, patch.updatedAt) };
  }

  async delete(principal: P, id: string): Promise<{ success: true; message: string }> {
    const current = await this.#requireWebhook(principal, id);
    if (!(await this.#store.deleteWebhook(current.id))) {
      throw new WebhookError('webhook_not_found', MESSAGES.webhookNotFound);
    }
    return { success: true, message: 'Webhook deleted successfully' };
  }

  /**
   * Replaces the secret and returns the new one; like `create`, the only time it is shown. For
   * `overlapSeconds` (default a day; 0: none) the current secret stays on as the previous one and
   * deliveries carry signatures with both: `X-ZTA-Signature` keeps the previous secret's and
   * `X-ZTA-Signature-Next` carries the new one's; `webhook-signature` has a `v1,` entry for each, new first.
   * Rotating again during an overlap drops the older previous secret at once.
   */
  async rotateSecret(
    principal: P,
    id: string,
    options: RotateSecretOptions = {},
  ): Promise<{ webhook: WebhookWithSecret }> {
    const { overlapSeconds } = parse(rotateSecretSchema, options);
    const secret = newSecret();
    const overlapping = overlapSeconds > 0;
    // Compare-and-set on the secret read: two rotations at once (a double click) would otherwise both keep
    // the same old secret as the previous one, and one caller would be shown a secret that never signs.
    // The one that loses reads again and rotates after the other, as if they had come one after another.
    for (let tries = 0; tries < ROTATION_TRIES; tries++) {
      const current = await this.#requireWebhook(principal, id);
      const now = this.#now();
      const updated = await this.#store.updateWebhook(current.id, {
        secret: this.#cipher.seal(secret),
        previousSecret: overlapping ? this.#resealIfPossible(current.secret) : null,
        previousSecretExpiresAt: overlapping ? new Date(now.getTime() + overlapSeconds * 1000) : null,
        updatedAt: now,
        ifSecret: current.secret,
      });
      if (updated !== null) return { webhook: { ...toWebhook(updated, now), secret } };
    }
    throw new WebhookError('rotation_conflict', 'The secret changed during rotation; try again');
  }

  /**
   * Ends a rotation overlap at once: the previous secret is forgotten and deliveries are signed with the
   * current secret only. A no-op (and no write) when there is no previous secret.
   */
  async revokePreviousSecret(principal: P, id: string): Promise<{ webhook: Webhook }> {
    const current = await this.#requireWebhook(principal, id);
    const now = this.#now();
    if (current.previousSecret === null && current.previousSecretExpiresAt === null) {
      return { webhook: toWebhook(current, now) };
    }
    const updated = await this.#store.updateWebhook(current.id, {
      previousSecret: null,
      previousSecretExpiresAt: null,
      updatedAt: now,
    });
    if (updated === null) throw new WebhookError('webhook_not_found', MESSAGES.webhookNotFound);
    return { webhook: toWebhook(updated, now) };
  }

  /** The activity log: deliveries (newest first) with every attempt, a page at a time. */
  async deliveries(
    principal: P,
    input: DeliveriesInput,
  ): Promise<{ deliveries: Delivery[]; nextCursor: string | null }> {
    const query = parse(deliveryQuerySchema, input);
    if (query.webhookId !== undefined) {
      await this.#requireWebhook(principal, query.webhookId);
    } else if (query.siteId !== undefined) {
      await this.#requireSite(principal, query.siteId);
    }
    const records = await this.#store.listDeliveries({
      ...(query.siteId !== undefined && { siteId: query.siteId }),
      ...(query.webhookId !== undefined && { webhookId: query.webhookId }),
      ...(query.status !== undefined && { status: query.status }),
      ...(query.since !== undefined && { since: query.since }),
      ...(query.cursor !== undefined && { after: decodeCursor(query.cursor) }),
      limit: query.limit + 1,
    });
    const page = records.slice(0, query.limit);
    const attempts = await this.#store.listAttempts(page.map((delivery) => delivery.id));
    const last = page.at(-1);
    return {
      deliveries: page.map((delivery) =>
        toDelivery(
          delivery,
          attempts.filter((attempt) => attempt.deliveryId === delivery.id),
        ),
      ),
      nextCursor: records.length > query.limit && last ? encodeCursor(last.createdAt, last.id) : null,
    };
  }

  /**
   * Queues a finished delivery (succeeded, failed or discarded) again, from attempt 1, with the same id: a
   * resend, as when a receiver answered 200 and then lost the event. The webhook must be active.
   */
  async redeliver(principal: P, deliveryId: string): Promise<{ delivery: Delivery }> {
    const id = parse(webhookIdSchema, deliveryId);
    const delivery = await this.#store.getDelivery(id);
    const webhook = delivery && (await this.#store.getWebhook(delivery.webhookId));
    if (!delivery || !webhook || !(await this.#authorize(principal, webhook.siteId))) {
      throw new WebhookError('delivery_not_found', MESSAGES.deliveryNotFound);
    }
    if (!webhook.active) {
      throw new WebhookError(
        'delivery_not_redeliverable',
        'Webhook is disabled; re-enable it before redelivering',
      );
    }
    const requeued = await this.#store.requeueDelivery(id, this.#now());
    if (requeued === null) {
      // The store also refuses a webhook disabled (or deleted), or a delivery pruned, since they were read
      // above: say which.
      const latest = await this.#store.getWebhook(webhook.id);
      if (latest === null || (await this.#store.getDelivery(id)) === null) {
        throw new WebhookError('delivery_not_found', MESSAGES.deliveryNotFound);
      }
      throw new WebhookError(
        'delivery_not_redeliverable',
        latest.active
          ? 'Only finished deliveries can be redelivered'
          : 'Webhook is disabled; re-enable it before redelivering',
      );
    }
    return { delivery: toDelivery(requeued, await this.#store.listAttempts([id])) };
  }

  /**
   * Moves every webhook's `secret` and `previousSecret` to the current encryption key: plaintext rows get
   * encrypted, rows sealed with an older key id are re-sealed. Reads `batchSize` webhooks at a time (through
   * the store's `listAllWebhooks`, which it requires) and rewrites only those that need it; returns how many
   * it read and how many it rewrote. Safe to run again (a second run updates nothing) and while dispatchers
   * run. An operator call: it takes no principal and checks no authorization, so never expose it to
   * tenants. Every key id still in use must be in `encryption.keys`; run it without `encryption` and it
   * changes nothing. A `rotateSecret` that lands between this method's read and write of the same webhook
   * wins, as does a `revokePreviousSecret`: the write is made only while both secrets are still the ones read
   * (that webhook is then left as it is; a later run reseals it if it still needs it).
   */
  async reencryptSecrets(
    options: ReencryptSecretsOptions = {},
  ): Promise<{ scanned: number; updated: number }> {
    const batchSize = options.batchSize ?? 100;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
      throw new TypeError('batchSize must be an integer from 1 to 10000');
    }
    const store = this.#store;
    if (typeof store.listAllWebhooks !== 'function') {
      throw new TypeError('reencryptSecrets needs a store with listAllWebhooks');
    }
    const cipher = this.#cipher;
    const reseal = (stored: string): string =>
      cipher.needsReseal(stored) ? cipher.seal(cipher.open(stored)) : stored;
    let scanned = 0;
    let updated = 0;
    let after: string | undefined;
    for (;;) {
      const page = await store.listAllWebhooks({ ...(after !== undefined && { after }), limit: batchSize });
      for (const record of page) {
        scanned += 1;
        const secret = reseal(record.secret);
        const previousSecret = record.previousSecret === null ? null : reseal(record.previousSecret);
        if (secret === record.secret && previousSecret === record.previousSecret) continue;
        const fresh = await store.getWebhook(record.id);
        if (
          fresh === null ||
          fresh.secret !== record.secret ||
          fresh.previousSecret !== record.previousSecret
        ) {
          continue; // rotated or deleted meanwhile: the new values were sealed with the current key already
        }
        // Not a change the owner made, so the owner's updatedAt stays; written only while both secrets are
        // still the ones read (a rotation or a revocation in between wins).
        const patch = {
          secret,
          previousSecret,
          updatedAt: fresh.updatedAt,
          ifSecret: record.secret,
          ifPreviousSecret: record.previousSecret,
        };
        if ((await store.updateWebhook(record.id, patch)) !== null) updated += 1;
      }
      if (page.length < batchSize) return { scanned, updated };
      after = page.at(-1)!.id;
    }
  }

  /** A stored secret moved to the current key; left as it is when this manager cannot open it. */
  #resealIfPossible(stored: string): string {
    try {
      return this.#cipher.needsReseal(stored) ? this.#cipher.seal(this.#cipher.open(stored)) : stored;
    } catch {
      return stored;
    }
  }

  async #requireSite(principal: P, siteId: string): Promise<void> {
    if (!(await this.#authorize(principal, siteId)))
      throw new WebhookError('access_denied', MESSAGES.accessDenied);
  }

  /** Missing and not-yours look the same, so ids of other tenants' webhooks do not leak. */
  async #requireWebhook(principal: P, id: string): Promise<WebhookRecord> {
    const webhookId = parse(webhookIdSchema, id);
    const record = await this.#store.getWebhook(webhookId);
    if (record === null || !(await this.#authorize(principal, record.siteId))) {
      throw new WebhookError('webhook_not_found', MESSAGES.webhookNotFound);
    }
    return record;
  }
}

function encodeCursor(createdAt: Date, id: string): string {
  return Buffer.from(JSON.stringify([createdAt.getTime(), id])).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    // The id must look like one (a tampered cursor with a NUL made the stores answer differently).
    if (Array.isArray(value) && Number.isFinite(value[0]) && webhookIdSchema.safeParse(value[1]).success) {
      return { createdAt: new Date(value[0] as number), id: value[1] as string };
    }
  } catch {
    // falls through to the error below
  }
  throw new WebhookError('validation_failed', 'cursor is invalid');
}
