/**
 * Shutdown: what is tracked just before `close()` is delivered; `close(timeout)` gives up on a server
 * that never answers and says how much was lost; and a real Express app in a child process, under
 * load, loses nothing when SIGTERM arrives with `handleSignals` on.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import type { IdstitchError, MixpanelSinkOptions } from '@idstitch/core';
import { MixpanelSink } from '@idstitch/core';
import { type FakeMixpanel, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { eventMessage } from '@idstitch/fake-mixpanel/helpers';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expectConserved } from './support.js';

const TOKEN = 'shutdown-token';
const SECRET = 'shutdown-secret';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const APP = fileURLToPath(new URL('./fixtures/express-app.ts', import.meta.url));

let fake: FakeMixpanel;
beforeAll(async () => {
  fake = await startFakeMixpanel({ token: TOKEN, apiSecret: SECRET });
});
afterEach(() => fake.clear());
afterAll(() => fake.close());

function createSink(options: Partial<MixpanelSinkOptions> = {}) {
  const errors: IdstitchError[] = [];
  const sink = new MixpanelSink({
    token: TOKEN,
    apiSecret: SECRET,
    host: fake.url,
    flushIntervalMs: 60_000,
    onError: (error) => errors.push(error),
    ...options,
  });
  return { sink, errors };
}

describe('close()', () => {
  it('delivers events tracked in the last millisecond before it, with batches already in flight', async () => {
    const { sink, errors } = createSink({ maxBatchMessages: 100 });
    fake.fail({ kind: 'delay', ms: 100 });
    const ids: string[] = [];
    for (let i = 0; i < 250; i += 1) {
      const message = eventMessage('Before Close', { i });
      ids.push(message.payload.properties.$insert_id);
      sink.write(message);
    }
    // Two full batches are out (one stalled); 50 events wait for a batch that would only fill later.
    await sink.close(5000);
    expect(fake.insertIds()).toEqual(new Set(ids));
    expect(errors).toEqual([]);
    expect(sink.stats()).toMatchObject({ delivered: 250, droppedTotal: 0 });
    expectConserved(sink);
  });

  it('against a server that never answers, returns at its deadline and reports what was lost', async () => {
    fake.setFaultPolicy(() => ({ kind: 'hang' }));
    // A request timeout far beyond the test's own timeout: close() must not wait for it.
    const { sink, errors } = createSink({ requestTimeoutMs: 120_000 });
    for (let i = 0; i < 10; i += 1) sink.write(eventMessage('Never Answered', { i }));
    // Not awaited: it cannot finish while the server hangs. It sends the batch now.
    void sink.flush();
    await fake.waitForRequests(1);
    await sink.close(300);

    expect(errors.map((e) => [e.code, e.details.undelivered])).toEqual([['shutdown_timeout', 10]]);
    expect(sink.stats()).toMatchObject({ delivered: 0, dropped: { shutdown_timeout: 10 } });
    expectConserved(sink);
    sink.write(eventMessage('After'));
    expect(sink.stats().dropped.after_close).toBe(1);
    expectConserved(sink);
  });

  it('gives up at its deadline on batches waiting out a long backoff', async () => {
    fake.setFaultPolicy(() => ({ kind: 'status', status: 503 }));
    const { sink, errors } = createSink({ retry: { minDelayMs: 60_000 } });
    for (let i = 0; i < 5; i += 1) sink.write(eventMessage('Backing Off', { i }));
    const retried = new Promise((resolve) => sink.on('retry', resolve));
    void sink.flush();
    await retried;
    await sink.close(200);
    expect(errors.map((e) => e.code)).toEqual(['shutdown_timeout']);
    expect(sink.stats()).toMatchObject({ delivered: 0, dropped: { shutdown_timeout: 5 }, requests: 1 });
    expectConserved(sink);
  });
});

describe('process lifetime', () => {
  const SCRIPT = fileURLToPath(new URL('./fixtures/script.ts', import.meta.url));
  async function runScript(mode: 'flush' | 'idle') {
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@idstitch/source', SCRIPT], {
      cwd: ROOT,
      env: { ...process.env, FAKE_URL: fake.url, MODE: mode, TOKEN, API_SECRET: SECRET },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr?.on('data', (chunk) => {
      stderr += chunk;
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    return { code, stats: JSON.parse(stdout.trim() || '{}'), stderr };
  }

  it('an idle sink with queued events never holds the process open', { timeout: 30_000 }, async () => {
    const { code, stats, stderr } = await runScript('idle');
    expect(code).toBe(0);
    // Ending without flush() or close() loses what was queued; that is what they are for. Not silently:
    expect(stats).toMatchObject({ tracked: 10, queued: 10, delivered: 0 });
    expect(fake.requests).toHaveLength(0);
    expect(stderr).toContain('exiting with 10 messages still queued in MixpanelSink, never sent');
    expect(stderr).toContain('await sink.close(timeoutMs)');
  });

  it('await flush() keeps the process alive through a retry backoff until delivery', {
    timeout: 30_000,
  }, async () => {
    fake.fail({ kind: 'status', status: 503 });
    const { code, stats, stderr } = await runScript('flush');
    expect(code, stderr).toBe(0);
    expect(stats, stderr).toMatchObject({ tracked: 10, delivered: 10, queued: 0, requests: 2 });
    expect(fake.events).toHaveLength(10);
    expect(stderr).not.toContain('never sent');
  });
});

interface App {
  child: ChildProcess;
  port: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

async function startApp(env: Record<string, string>): Promise<App> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@idstitch/source', APP], {
    cwd: ROOT,
    env: { ...process.env, FAKE_URL: fake.url, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const port = await new Promise<number>((resolve, reject) => {
    let stdout = '';
    child.stdout?.on('data', (chunk) => {
      stdout += chunk;
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line).port);
    });
    void exited.then(() => reject(new Error(`app exited before listening: ${stderr}`)));
  });
  return { child, port, exited, stderr: () => stderr };
}

/** One GET /work?n=…, on a fresh connection; true when the app answered it. */
function work(port: number, n: number): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get({ host: '127.0.0.1', port, path: `/work?n=${n}`, agent: false }, (response) => {
      let body = '';
      response.on('data', (chunk) => {
        body += chunk;
      });
      response.on('end', () => resolve(response.statusCode === 200 && body === 'ok'));
      response.on('error', () => resolve(false));
    });
    request.on('error', () => resolve(false));
  });
}

function receivedNs(): Set<number> {
  return new Set(fake.events.filter((e) => e.event === 'Work Done').map((e) => e.properties.n as number));
}

describe('graceful shutdown of an Express app in a child process', () => {
  it('under load, SIGTERM with handleSignals: every event of every answered request reaches Mixpanel', {
    timeout: 30_000,
  }, async () => {
    const app = await startApp({ APP_CLOSES_SERVER: '1', FLUSH_INTERVAL_MS: '200' });
    const answered = new Set<number>();
    let next = 0;
    let signalled = false;
    const worker = async () => {
      for (;;) {
        const n = next++;
        const ok = await work(app.port, n);
        if (ok) answered.add(n);
        if (!ok && signalled) return;
        if (!signalled && answered.size >= 600) {
          signalled = true;
          app.child.kill('SIGTERM');
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    const exit = await app.exited;

    expect(exit, app.stderr()).toEqual({ code: 0, signal: null });
    const received = receivedNs();
    const missing = [...answered].filter((n) => !received.has(n));
    expect(missing, app.stderr()).toEqual([]);
    expect(answered.size).toBeGreaterThanOrEqual(600);
    expect(app.stderr()).toBe('');
  });

  it('SIGTERM with events still queued and no handler of the app: delivers them, then ends by the signal', {
    timeout: 30_000,
  }, async () => {
    const app = await startApp({ FLUSH_INTERVAL_MS: '600000' });
    const results = await Promise.all(Array.from({ length: 200 }, (_, n) => work(app.port, n)));
    expect(results.every(Boolean)).toBe(true);
    // Nothing has gone out yet: the batch is not full and the flush interval is ten minutes.
    expect(fake.events).toHaveLength(0);
    app.child.kill('SIGTERM');
    const exit = await app.exited;

    expect(exit, app.stderr()).toEqual({ code: null, signal: 'SIGTERM' });
    expect(receivedNs()).toEqual(new Set(Array.from({ length: 200 }, (_, n) => n)));
    expect(app.stderr()).toBe('');
  });
});
