import { afterEach, describe, expect, it, vi } from 'vitest';
import { IdstitchOptionsError } from './errors.js';
import { resolveOptions } from './options.js';
import { MemorySink } from './sinks/memory-sink.js';

const start = (options: object) =>
  resolveOptions(
    { sink: new MemorySink(), logger: { warn() {}, error() {} }, ...options },
    { resolveUserId: () => undefined },
    { sink: () => new MemorySink() },
  );

function thrownBy(run: () => unknown): IdstitchOptionsError {
  try {
    run();
  } catch (error) {
    if (error instanceof IdstitchOptionsError) return error;
    throw error;
  }
  throw new Error('did not throw');
}

describe('the environment decides whether a missing cookie secret stops start-up', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.unstubAllGlobals();
  });

  it('on Cloudflare Workers, where no NODE_ENV can be read, a secret-less start fails closed', () => {
    vi.stubEnv('NODE_ENV', undefined);
    vi.stubGlobal('navigator', { userAgent: 'Cloudflare-Workers' });
    const error = thrownBy(() => start({}));
    expect(error.option).toBe('cookie.secret');
    expect(error.message).toMatch(/no NODE_ENV can be read.*environment: 'development'/);
  });

  it("on Cloudflare Workers, `environment: 'development'` signs with a per-process key instead", () => {
    vi.stubEnv('NODE_ENV', undefined);
    vi.stubGlobal('navigator', { userAgent: 'Cloudflare-Workers' });
    expect(start({ environment: 'development' }).cookie.secrets).toHaveLength(1);
  });

  it("`environment: 'production'` fails closed even when NODE_ENV says development", () => {
    vi.stubEnv('NODE_ENV', 'development');
    expect(thrownBy(() => start({ environment: 'production' })).message).toMatch(
      /environment is 'production'/,
    );
  });

  it('Node without NODE_ENV stays development, as before', () => {
    vi.stubEnv('NODE_ENV', undefined);
    expect(start({}).cookie.secrets).toHaveLength(1);
  });

  it('refuses an unknown environment, naming the option', () => {
    expect(thrownBy(() => start({ environment: 'staging' })).option).toBe('environment');
  });
});
