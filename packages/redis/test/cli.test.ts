import { main, optionsFromEnv } from '@idstitch/redis/cli';
import { describe, expect, it } from 'vitest';

function io(env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: {
      env,
      log: (line: string) => out.push(line),
      error: (line: string) => err.push(line),
      stopSignal: new Promise<NodeJS.Signals>(() => {}),
    },
  };
}

describe('idstitch-outbox-worker configuration', () => {
  it('reads Redis, the prefix, Mixpanel credentials and extra options from the environment', () => {
    const options = optionsFromEnv({
      REDIS_URL: 'redis://redis.internal:6380',
      IDSTITCH_REDIS_PREFIX: 'shop:',
      MIXPANEL_TOKEN: 'token',
      MIXPANEL_SERVICE_ACCOUNT_USERNAME: 'sa',
      MIXPANEL_SERVICE_ACCOUNT_SECRET: 'secret',
      MIXPANEL_PROJECT_ID: '42',
      MIXPANEL_HOST: 'eu',
      IDSTITCH_OUTBOX_OPTIONS: '{"claimIdleMs":30000,"mixpanel":{"flushIntervalMs":1000}}',
    });
    expect(options).toEqual({
      redis: 'redis://redis.internal:6380',
      prefix: 'shop:',
      claimIdleMs: 30_000,
      mixpanel: {
        token: 'token',
        serviceAccount: { username: 'sa', secret: 'secret' },
        projectId: '42',
        host: 'eu',
        flushIntervalMs: 1000,
      },
    });
    expect(optionsFromEnv({ MIXPANEL_TOKEN: 't' }).redis).toBe('redis://127.0.0.1:6379');
  });

  it('exits 2 naming the variable when the token is missing or the JSON is bad', async () => {
    const missing = io({});
    expect(await main([], missing.io)).toBe(2);
    expect(missing.err.join('\n')).toContain('MIXPANEL_TOKEN');
    const bad = io({ MIXPANEL_TOKEN: 't', IDSTITCH_OUTBOX_OPTIONS: '{nope' });
    expect(await main([], bad.io)).toBe(2);
    expect(bad.err.join('\n')).toContain('IDSTITCH_OUTBOX_OPTIONS');
  });

  it('prints usage for --help and refuses arguments (it is configured from the environment)', async () => {
    const help = io();
    expect(await main(['--help'], help.io)).toBe(0);
    expect(help.out.join('\n')).toContain('REDIS_URL');
    const extra = io({ MIXPANEL_TOKEN: 't' });
    expect(await main(['--redis', 'x'], extra.io)).toBe(2);
    expect(extra.err.join('\n')).toContain('unexpected argument --redis');
  });
});
