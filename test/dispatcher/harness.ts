import { afterEach } from 'vitest';
import {
  type Delivery,
  type DeliveryStatus,
  Dispatcher,
  type DispatcherOptions,
  type Store,
  WebhookManager,
} from '../../src/index.js';
import { createStore } from '../postgres/stores.js';
import { capturingLogger, type LogLine } from '../support/logger.js';
import { type Handler, type Receiver, startReceiver } from '../support/receiver.js';
import { createTestCA, type TestCA } from '../support/tls.js';

export const SITE = 'site_abc123';
export const owner = { sites: [SITE, 'site_two'] };
type Principal = typeof owner;

export { capturingLogger, type LogLine };

let sharedCA: Promise<TestCA> | undefined;
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A receiver on loopback with a certificate from the shared test CA; closed after the test. */
export async function receiver(handler?: Handler): Promise<Receiver> {
  sharedCA ??= createTestCA();
  const started = await startReceiver({ ca: await sharedCA, ...(handler && { handler }) });
  cleanups.push(() => started.close());
  return started;
}

/**
 * A store (by default a fresh one of the kind the enclosing `describeEachStore` block is for, see
 * ../postgres/stores.ts), a manager and a dispatcher trusting the test CA, with a short retry schedule
 * unless told otherwise. The dispatcher is not started; it is stopped after the test.
 */
export async function setup(options: Partial<DispatcherOptions> & { caCert?: string; store?: Store } = {}) {
  sharedCA ??= createTestCA();
  const ca = await sharedCA;
  const store = options.store ?? (await createStore());
  const logs: LogLine[] = [];
  const manager = new WebhookManager<Principal>({
    store,
    authorize: (principal, siteId) => principal.sites.includes(siteId),
    allowPrivateNetworks: true,
    ...(options.encryption !== undefined && { encryption: options.encryption }),
  });
  const dispatcher = new Dispatcher({
    store,
    tls: { ca: ca.caCert },
    allowPrivateNetworks: true,
    retry: { delaysMs: [50, 100] },
    logger: capturingLogger(logs),
    ...options,
  });
  cleanups.push(() => dispatcher.stop());
  const subscribe = async (
    url: string,
    events: string[] = ['pageview', 'event', 'goal', 'alert', 'session_end'],
  ) => (await manager.create(owner, { siteId: SITE, url, events })).webhook;
  return { store, manager, dispatcher, logs, subscribe };
}

export const pageview = (path = '/blog/my-article') => ({
  siteId: SITE,
  event: 'pageview' as const,
  data: { path, referrer: 'https://google.com', country: 'US', device: 'desktop', browser: 'Chrome' },
});

export async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Waits until the webhook's newest delivery has `status`, and returns it. */
export async function latestDelivery(
  manager: WebhookManager<Principal>,
  webhookId: string,
  status: DeliveryStatus,
): Promise<Delivery> {
  let latest: Delivery | undefined;
  await until(async () => {
    [latest] = (await manager.deliveries(owner, { webhookId })).deliveries;
    return latest?.status === status;
  });
  return latest!;
}
