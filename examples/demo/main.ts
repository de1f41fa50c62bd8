/**
 * `npm run demo`: see ./run.ts for the scenario. This file owns the process: exit codes, Ctrl-C, a hard
 * time limit, and making sure nothing is left running.
 *
 * Exit codes: 0 everything worked; 1 something unexpected happened (the demo doubles as a smoke test);
 * 130 / 143 interrupted by SIGINT / SIGTERM.
 */
import { Output } from './output.js';
import { Cleanup, runDemo } from './run.js';

const TIME_LIMIT_MS = 50_000;

const out = new Output();
const cleanup = new Cleanup();
let exiting = false;

// Until the demo says otherwise, any way out of this process is a failure.
process.exitCode = 1;

async function finish(code: number): Promise<void> {
  if (exiting) return;
  exiting = true;
  out.stopProgress();
  await cleanup.run();
  process.exitCode = code;
  // Everything is closed, so the process should now end by itself. If a handle keeps it alive, that is a
  // bug worth failing for; this timer does not itself keep the process alive.
  setTimeout(() => {
    console.error('demo: something kept the process alive after cleanup');
    process.exit(code === 0 ? 1 : code);
  }, 3_000).unref();
}

function interrupted(signal: NodeJS.Signals, code: number): void {
  if (exiting) {
    process.exit(code); // a second Ctrl-C: stop waiting for cleanup
  }
  out.stopProgress();
  out.line(`\n${signal}: stopping the servers and exiting`);
  void finish(code);
}
process.on('SIGINT', () => interrupted('SIGINT', 130));
process.on('SIGTERM', () => interrupted('SIGTERM', 143));

process.on('unhandledRejection', (error) => {
  if (exiting) return;
  out.line(out.red(`demo failed: unhandled rejection: ${String(error)}`));
  void finish(1);
});

// `npm run` starts this process through a shell. When only npm is signalled (a CI runner or supervisor
// stopping it), the shell dies without passing the signal on, and this process would be orphaned.
// Watch for that: a changed parent pid means whoever started the demo is gone.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent && !exiting) {
    out.line('\nthe process that started the demo is gone: stopping the servers and exiting');
    void finish(143);
  }
}, 250).unref();

const limit = setTimeout(() => {
  out.line(out.red(`demo failed: it took longer than ${TIME_LIMIT_MS / 1000} s`));
  void finish(1);
}, TIME_LIMIT_MS);
limit.unref();

runDemo(out, cleanup).then(
  (problems) => {
    clearTimeout(limit);
    void finish(problems.length === 0 ? 0 : 1);
  },
  (error: unknown) => {
    clearTimeout(limit);
    if (exiting) return; // interrupted: the servers closed under the running scenario
    out.line(
      out.red(`demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`),
    );
    void finish(1);
  },
);
