// `npm run demo` as a user runs it: a child process (npm → sh → node) in its own process group, output
// piped (not a terminal, as in CI). It must exit 0 within the time limit with consistent numbers, and
// leave no process and no listening port behind, also when interrupted with Ctrl-C.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { eventually, ROOT, sleep } from './support.js';

interface Run {
  child: ChildProcess;
  output: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `npm run demo`, or with `direct` the demo's own node process as the npm script starts it. */
function startDemo({ direct = false } = {}): Run {
  const env = { ...process.env };
  for (const name of ['FORCE_COLOR', 'NODE_OPTIONS', 'VITEST', 'VITEST_POOL_ID', 'VITEST_WORKER_ID'])
    delete env[name];
  const [command, args] = direct
    ? [process.execPath, ['--import', 'tsx', 'examples/demo/main.ts']]
    : ['npm', ['run', 'demo']];
  // detached: a new process group (and session), so the test can see everything the demo started.
  const child = spawn(command, args, {
    cwd: ROOT,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr!.on('data', (chunk) => {
    output += chunk;
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exit };
}

/** Live (not zombie) processes in the group. */
function groupMembers(pgid: number): string[] {
  const ps = execFileSync('ps', ['-eo', 'pid=,pgid=,stat=,args='], { encoding: 'utf8' });
  return ps
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([, group, stat]) => Number(group) === pgid && !stat?.startsWith('Z'))
    .map((fields) => fields.join(' '));
}

async function expectNothingLeft(run: Run): Promise<void> {
  const pgid = run.child.pid!;
  try {
    await eventually(() => groupMembers(pgid).length === 0, 'the process group to be empty', 5_000);
  } finally {
    // Whatever the assertion says, do not leave anything running past the test.
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // nothing left: the expected case
    }
  }
  const ports = [...run.output().matchAll(/https:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
  for (const port of new Set(ports)) {
    await expect(refused(port), `port ${port} is still open`).resolves.toBe(true);
  }
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

/** The cells of the summary table's row for `endpoint`. */
function summaryRow(output: string, endpoint: string) {
  const line = output.split('\n').find((l) => new RegExp(`^\\s+${endpoint}\\s+\\| wh_`).test(l));
  expect(line, `summary row for ${endpoint}`).toBeDefined();
  const [, webhook, sent, delivered, retried, failed, discarded, pending, state] = line!
    .split('|')
    .map((cell) => cell.trim());
  return {
    webhook,
    sent: Number(sent),
    delivered: Number(delivered),
    retried: Number(retried),
    failed: Number(failed),
    discarded: Number(discarded),
    pending: Number(pending),
    state,
  };
}

describe('npm run demo', () => {
  it('runs the whole flow, prints consistent numbers, exits 0 and leaves nothing behind', async () => {
    const run = startDemo();
    const timer = setTimeout(() => process.kill(-run.child.pid!, 'SIGKILL'), 60_000);
    const { code } = await run.exit;
    clearTimeout(timer);
    const output = run.output();
    try {
      expect(code, output).toBe(0);

      // Settings are announced, with the library's real defaults.
      expect(output).toContain('a failed attempt is retried after 200 ms, then 500 ms (3 attempts in all)');
      expect(output).toContain('a webhook is disabled after 3 failed deliveries in a row');
      expect(output).toContain("(The library's defaults are the spec's schedule, 5 s and then 25 s");

      // Registration through the API, the list without secrets, tenancy.
      expect(output.match(/→ 201 Created {2}wh_\S+, secret whsec_/g)).toHaveLength(2);
      expect(output).toContain('✓ no "secret" field in the list');
      expect(output).toContain('→ 403 {"error":"Access denied"}');

      // Progress as plain lines (not a terminal): no carriage returns or escape codes.
      expect(output).toMatch(/collect 400\/400 \| receiver: 401\/401 delivered/);
      expect(output).not.toContain('\r');
      expect(output).not.toContain('\u001b[');

      // The followed failing delivery: three attempts, then failed; the webhook disabled.
      expect(output).toMatch(/attempt 1 → 500, next attempt in \d+ ms/);
      expect(output).toMatch(/attempt 3 → 500, no attempts left: delivery failed/);
      expect(output).toMatch(/webhook disabled: wh_\S+ \(Disabled after 3 consecutive failed deliveries\)/);

      // The activity log of a failed delivery: three attempts answered 500.
      const attempts = output.match(/^\s+[123] \| \d\d:\d\d:\d\d\.\d{3} \| \+\d+ ms\s+\|\s+500 \|/gm);
      expect(attempts).toHaveLength(3);

      expect(output).toContain('→ 401 {"error":"Invalid signature"}');

      // The summary: every good delivery delivered; the failing webhook disabled; numbers add up.
      const good = summaryRow(output, 'receiver');
      expect(good).toMatchObject({
        sent: 401,
        delivered: 401,
        failed: 0,
        discarded: 0,
        pending: 0,
        state: 'active',
      });
      const bad = summaryRow(output, 'failing');
      expect(bad.state).toBe('disabled');
      expect(bad.delivered).toBe(0);
      expect(bad.failed).toBeGreaterThanOrEqual(3);
      expect(bad.failed + bad.discarded + bad.pending).toBe(bad.sent);
      expect(bad.retried).toBeGreaterThanOrEqual(2);
      expect(output).toContain('signature checks at the receiver: 401 passed, 1 failed (the forged request)');
      expect(output).toContain('webhooks disabled: 1 of 2');
      expect(output).not.toContain('✗');
      expect(output.match(/^ {3}✓ /gm)?.length).toBeGreaterThanOrEqual(9);

      const seconds = Number(/Demo finished in ([\d.]+) s: everything worked\./.exec(output)?.[1]);
      expect(seconds).toBeLessThan(30);
    } finally {
      await expectNothingLeft(run);
    }
  }, 75_000);

  it('stops cleanly on Ctrl-C (SIGINT to its process group), leaving nothing running', async () => {
    const run = startDemo();
    try {
      await eventually(() => run.output().includes('3. Send'), 'the traffic burst to start', 30_000);
      await sleep(200); // mid-burst: requests, deliveries and retries in flight
      process.kill(-run.child.pid!, 'SIGINT');
      const timer = setTimeout(() => process.kill(-run.child.pid!, 'SIGKILL'), 10_000);
      const { code, signal } = await run.exit;
      clearTimeout(timer);
      // npm itself dies of the SIGINT; the demo under it exits 130 after cleaning up.
      expect(code === 130 || signal === 'SIGINT', `code ${code}, signal ${signal}\n${run.output()}`).toBe(
        true,
      );
      expect(run.output()).toContain('SIGINT: stopping the servers and exiting');
      expect(run.output()).not.toContain('something kept the process alive');
      expect(run.output()).not.toContain('Demo finished');
    } finally {
      await expectNothingLeft(run);
    }
  }, 45_000);

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)(
    'exits %s with %i, as its documentation says, after cleaning up',
    async (signal, expected) => {
      const run = startDemo({ direct: true });
      try {
        await eventually(() => run.output().includes('3. Send'), 'the traffic burst to start', 30_000);
        run.child.kill(signal);
        const timer = setTimeout(() => run.child.kill('SIGKILL'), 10_000);
        const { code } = await run.exit;
        clearTimeout(timer);
        expect(code, run.output()).toBe(expected);
        expect(run.output()).toContain(`${signal}: stopping the servers and exiting`);
      } finally {
        await expectNothingLeft(run);
      }
    },
    45_000,
  );

  it('stops when only npm is terminated (as a CI runner may do): nothing left running', async () => {
    const run = startDemo();
    try {
      await eventually(() => run.output().includes('3. Send'), 'the traffic burst to start', 30_000);
      run.child.kill('SIGTERM'); // npm alone; the shell under it dies without passing the signal on
      await run.exit;
      // The demo noticed it was orphaned and stopped, rather than running on to the end by itself.
      expect(run.output()).toContain(
        'the process that started the demo is gone: stopping the servers and exiting',
      );
      expect(run.output()).not.toContain('Demo finished');
    } finally {
      await expectNothingLeft(run);
    }
  }, 45_000);
});
