/**
 * Starts real redis-server processes on free loopback ports for the tests, and stops them. Never
 * skips: without redis-server the tests fail, naming the install script.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** A client of the test's own (closed by `stop()`), for inspecting the server. */
  readonly client: Redis;
  /** Stops the server with SIGKILL (no shutdown save): a crash. */
  crash(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  restart(): Promise<void>;
  /** Restarts it if a test crashed it and failed before restarting it (so one failure does not cascade). */
  ensureRunning(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open, nothing is answered, like a stalled Redis. */
  pause(): void;
  /** Lets a paused server run again (SIGCONT); it then answers everything it was sent meanwhile. */
  resume(): void;
  /** Stops it for good and removes its data directory. */
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  /** Append-only file with fsync on every write, so a crash loses nothing acknowledged. Default false. */
  aof?: boolean;
  /** More `redis-server` arguments, e.g. `['--maxmemory', '16mb', '--maxmemory-policy', 'noeviction']`. */
  args?: readonly string[];
  /** A password (`--requirepass`); the test's own client authenticates with it. */
  password?: string;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function launch(port: number, dir: string, options: RedisServerOptions): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''];
  args.push(...(options.aof ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']));
  if (options.password !== undefined) args.push('--requirepass', options.password);
  args.push(...(options.args ?? []));
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () => fail(new Error(`redis-server did not start within 10 s:\n${output}`)),
      10_000,
    );
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      fail(
        error.code === 'ENOENT'
          ? new Error(
              'redis-server is not installed: run `bash scripts/ensure-redis.sh` (.ci/run does). ' +
                'The Redis tests never skip.',
            )
          : error,
      );
    });
    child.once('exit', (code) => fail(new Error(`redis-server exited with ${code}:\n${output}`)));
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        child.stdout?.off('data', onData);
        resolve(child);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'idstitch-redis-'));
  let child = await launch(port, dir, options);
  running.add(child);
  // The test's client must not hide an outage from the code under test; it only inspects.
  const client = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: false,
    maxRetriesPerRequest: null,
    ...(options.password !== undefined ? { password: options.password } : {}),
  });
  client.on('error', () => {});
  let up = true;
  const kill = async (signal: NodeJS.Signals) => {
    up = false;
    child.kill(signal);
    await exited(child);
    running.delete(child);
  };
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    client,
    crash: () => kill('SIGKILL'),
    async restart() {
      child = await launch(port, dir, options);
      running.add(child);
      up = true;
    },
    pause() {
      child.kill('SIGSTOP');
    },
    resume() {
      child.kill('SIGCONT');
    },
    async ensureRunning() {
      if (!up) await server.restart();
      child.kill('SIGCONT');
    },
    async stop() {
      client.disconnect();
      child.kill('SIGCONT');
      await kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** Polls `condition` until it holds (a condition, never a fixed sleep); fails after `timeoutMs`. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
