import { EventEmitter } from 'node:events';
import type { Pool } from 'pg';
import { describe, expect, it } from 'vitest';
import { NotificationListener } from '../../src/adapters/postgres/listener.js';
import { waitFor } from './records.js';

/** A stand-in for one pooled connection: answers LISTEN, and pings unless told to hang. */
class FakeClient extends EventEmitter {
  readonly queries: string[] = [];
  released: unknown = 'no';
  constructor(
    readonly hangPings: boolean,
    readonly hangListen = false,
  ) {
    super();
  }
  query(text: string): Promise<unknown> {
    this.queries.push(text);
    if (text === 'SELECT 1' && this.hangPings) return new Promise(() => {});
    if (text.startsWith('LISTEN') && this.hangListen) return new Promise(() => {});
    return Promise.resolve({ rows: [] });
  }
  release(arg?: unknown): void {
    this.released = arg;
  }
}

function fakePool(plan: { hangPings?: boolean[]; hangListen?: boolean[]; connectDelayMs?: number } = {}) {
  const clients: FakeClient[] = [];
  const pool = {
    connect: async () => {
      if (plan.connectDelayMs) await new Promise((resolve) => setTimeout(resolve, plan.connectDelayMs));
      const client = new FakeClient(
        plan.hangPings?.[clients.length] ?? false,
        plan.hangListen?.[clients.length] ?? false,
      );
      clients.push(client);
      return client;
    },
  };
  return { pool: pool as unknown as Pool, clients };
}

const options = { channel: 'zta.due', listenSql: 'LISTEN "zta.due"', minBackoffMs: 1, maxBackoffMs: 5 };

describe('NotificationListener', () => {
  it('calls listeners once when live and on each notification for its channel only', async () => {
    const { pool, clients } = fakePool();
    const listener = new NotificationListener({ pool, ...options });
    let calls = 0;
    const unsubscribe = listener.subscribe(() => calls++);
    await waitFor(() => calls === 1);
    expect(clients[0]!.queries).toEqual(['LISTEN "zta.due"']);
    clients[0]!.emit('notification', { channel: 'zta.due', processId: 1 });
    clients[0]!.emit('notification', { channel: 'other.due', processId: 1 });
    expect(calls).toBe(2);
    unsubscribe();
    await waitFor(() => clients[0]!.released === true);
    await listener.close();
  });

  it('treats an unanswered ping as a lost connection and reconnects', async () => {
    const { pool, clients } = fakePool({ hangPings: [true, false] });
    const errors: unknown[] = [];
    const listener = new NotificationListener({
      pool,
      ...options,
      pingIntervalMs: 5,
      pingTimeoutMs: 20,
      onError: (error) => errors.push(error),
    });
    let calls = 0;
    listener.subscribe(() => calls++);
    await waitFor(() => calls === 2);
    expect(clients).toHaveLength(2);
    expect(clients[0]!.released).toBe(true);
    expect(String(errors[0])).toMatch(/stopped answering/);
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(clients).toHaveLength(2); // the second connection answers its pings
    await listener.close();
    expect(clients[1]!.released).toBe(true);
  });

  it('treats a LISTEN without an answer as a lost connection, and close() does not wait for it', async () => {
    const { pool, clients } = fakePool({ hangListen: [true, false, true] });
    const errors: unknown[] = [];
    const listener = new NotificationListener({
      pool,
      ...options,
      pingTimeoutMs: 20,
      onError: (error) => errors.push(error),
    });
    let calls = 0;
    const unsubscribe = listener.subscribe(() => calls++);
    await waitFor(() => calls === 1);
    expect(clients).toHaveLength(2);
    expect(clients[0]!.released).toBe(true);
    expect(String(errors[0])).toMatch(/LISTEN statement got no answer/);
    unsubscribe();
    await waitFor(() => clients[1]!.released === true);
    // A third session whose LISTEN hangs: closing it returns at once and gives the connection back.
    listener.subscribe(() => calls++);
    await waitFor(() => clients.length === 3);
    await listener.close();
    expect(clients[2]!.released).toBe(true);
  });

  it('reconnects after the connection reports an error, and a listener that throws breaks nothing', async () => {
    const { pool, clients } = fakePool();
    const errors: unknown[] = [];
    const listener = new NotificationListener({ pool, ...options, onError: (error) => errors.push(error) });
    let calls = 0;
    listener.subscribe(() => {
      calls++;
      throw new Error('listener bug');
    });
    await waitFor(() => calls === 1);
    clients[0]!.emit('error', new Error('terminating connection due to administrator command'));
    await waitFor(() => calls === 2);
    expect(clients[0]!.released).toBe(true);
    expect(errors.map(String)).toContain('Error: terminating connection due to administrator command');
    expect(errors.map(String)).toContain('Error: listener bug');
    await listener.close();
  });

  it('gives back a connection that arrives after it was closed', async () => {
    const { pool, clients } = fakePool({ connectDelayMs: 30 });
    const listener = new NotificationListener({ pool, ...options });
    listener.subscribe(() => {});
    await listener.close();
    await waitFor(() => clients.length === 1 && clients[0]!.released === true);
    expect(clients[0]!.queries).toEqual([]);
  });
});
