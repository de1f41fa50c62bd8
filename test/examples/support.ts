/**
 * Helpers for the examples' tests: one test CA per file, servers and clients closed after each test, and
 * an ofetch client that trusts the CA (every example is driven over real HTTPS on loopback).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type $Fetch, ofetch } from 'ofetch';
import { Agent } from 'undici';
import { afterEach } from 'vitest';
import { type Handler, type Receiver, startReceiver } from '../support/receiver.js';
import { createTestCA, type TestCA } from '../support/tls.js';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

let sharedCA: Promise<TestCA> | undefined;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** Runs `fn` after the current test (last registered, first run). */
export function onCleanup(fn: () => Promise<unknown> | unknown): void {
  cleanups.push(fn);
}

export function testCA(): Promise<TestCA> {
  sharedCA ??= createTestCA();
  return sharedCA;
}

/** A server certificate from the shared test CA (valid for 127.0.0.1 and localhost). */
export async function serverCert(): Promise<{ cert: string; key: string }> {
  return (await testCA()).issue();
}

/** An ofetch client trusting the test CA; never throws on an HTTP status, never retries. */
export async function httpsClient(baseURL?: string): Promise<$Fetch> {
  const agent = new Agent({ connect: { ca: (await testCA()).caCert } });
  onCleanup(() => agent.close());
  return ofetch.create({
    ...(baseURL && { baseURL }),
    dispatcher: agent,
    retry: 0,
    timeout: 10_000,
    ignoreResponseError: true,
  });
}

/** A recording HTTPS server (test/support/receiver.ts) with a certificate from the shared CA. */
export async function recorder(handler?: Handler): Promise<Receiver> {
  const receiver = await startReceiver({ ca: await testCA(), ...(handler && { handler }) });
  onCleanup(() => receiver.close());
  return receiver;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` every 10 ms; throws with `what` after `timeoutMs`. */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export interface RunningMain {
  /** The first `https://…` or `http://…` origin the program printed after `label`. */
  origin: string;
  output(): string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Runs an example's main.ts as its own process (`node --import tsx`), with `env` added, until it prints
 * `label` followed by its origin. Killed after the test if still running.
 */
export async function runMain(
  script: string,
  env: Record<string, string>,
  label: string,
): Promise<RunningMain> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onCleanup(() => child.kill('SIGKILL'));
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const pattern = new RegExp(`${label} (https?://127\\.0\\.0\\.1:\\d+)`);
  await eventually(() => pattern.test(output) || child.exitCode !== null, `${script} to start`, 15_000);
  const origin = pattern.exec(output)?.[1];
  if (origin === undefined) throw new Error(`${script} did not start:\n${output}`);
  return {
    origin,
    output: () => output,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Writes a fresh server certificate and key to a temp dir (removed after the test). */
export async function certFiles(): Promise<{ TLS_CERT_FILE: string; TLS_KEY_FILE: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'zta-example-test-'));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  const { cert, key } = await serverCert();
  await writeFile(join(dir, 'cert.pem'), cert);
  await writeFile(join(dir, 'key.pem'), key);
  return { TLS_CERT_FILE: join(dir, 'cert.pem'), TLS_KEY_FILE: join(dir, 'key.pem') };
}
