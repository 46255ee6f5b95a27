import { describe, expect, it } from 'vitest';
import { IdstitchOptionsError } from '../../errors.js';
import { resolveMixpanelOptions } from './options.js';

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('resolveMixpanelOptions', () => {
  it('defaults to the US host, /track for events, and token auth on /import', () => {
    const options = resolveMixpanelOptions({ token: 'tok' });
    expect(options.baseUrl.href).toBe('https://api.mixpanel.com/');
    expect(options.eventEndpoint).toBe('track');
    expect(options.importAuthorization).toBe(basic('tok', ''));
    expect(options.canMerge).toBe(false);
    expect(options).toMatchObject({ maxBatchMessages: 2000, maxBatchBytes: 2 * 1024 * 1024, compress: true });
  });

  it.each([
    ['eu', 'https://api-eu.mixpanel.com/'],
    ['in', 'https://api-in.mixpanel.com/'],
    ['http://127.0.0.1:4000', 'http://127.0.0.1:4000/'],
    ['https://proxy.example.com/mixpanel', 'https://proxy.example.com/mixpanel/'],
  ])('resolves host %s to %s, keeping a proxy path prefix', (host, href) => {
    expect(resolveMixpanelOptions({ token: 'tok', host }).baseUrl.href).toBe(href);
  });

  it('uses a service account with the project ID, and defaults events to /import', () => {
    const options = resolveMixpanelOptions({
      token: 'tok',
      serviceAccount: { username: 'sa.user', secret: 'sa-secret' },
      projectId: 12345,
    });
    expect(options.importAuthorization).toBe(basic('sa.user', 'sa-secret'));
    expect(options.projectId).toBe('12345');
    expect(options.eventEndpoint).toBe('import');
    expect(options.canMerge).toBe(true);
  });

  it('sends the API secret as the Basic user with an empty password (the colon kept)', () => {
    const options = resolveMixpanelOptions({ token: 'tok', apiSecret: 'api-secret' });
    expect(options.importAuthorization).toBe(basic('api-secret', ''));
    expect(options.projectId).toBeUndefined();
    expect(options.eventEndpoint).toBe('import');
  });

  it('lets endpoint override the default', () => {
    expect(resolveMixpanelOptions({ token: 'tok', apiSecret: 's', endpoint: 'track' }).eventEndpoint).toBe(
      'track',
    );
  });

  it.each([
    [{ token: '' }, 'token'],
    [{ token: 'tok', host: 'mars' }, 'host'],
    [{ token: 'tok', host: 'ftp://example.com' }, 'host'],
    [{ token: 'tok', host: 'https://user:pw@example.com' }, 'host'],
    [{ token: 'tok', serviceAccount: { username: 'u', secret: 's' } }, 'projectId'],
    [{ token: 'tok', serviceAccount: { username: 'u', secret: 's' }, projectId: 'abc' }, 'projectId'],
    [{ token: 'tok', serviceAccount: { username: 'u', secret: '' }, projectId: 1 }, 'serviceAccount.secret'],
    [
      { token: 'tok', serviceAccount: { username: 'u', secret: 's' }, projectId: 1, apiSecret: 'x' },
      'apiSecret',
    ],
    [{ token: 'tok', endpoint: 'engage' }, 'endpoint'],
    [{ token: 'tok', maxBatchMessages: 5000 }, 'maxBatchMessages'],
    [{ token: 'tok', maxBatchBytes: 10 * 1024 * 1024 }, 'maxBatchBytes'],
    [{ token: 'tok', concurrency: 0 }, 'concurrency'],
    [{ token: 'tok', overflow: 'block' }, 'overflow'],
    [{ token: 'tok', retry: { jitter: 2 } }, 'retry.jitter'],
    [{ token: 'tok', retry: { minDelayMs: 5000, maxDelayMs: 1000 } }, 'retry.maxDelayMs'],
    [{ token: 'tok', handleSignals: 'yes' }, 'handleSignals'],
  ])('throws an IdstitchOptionsError naming the option for %j', (options, option) => {
    let thrown: unknown;
    try {
      resolveMixpanelOptions(options as never);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(IdstitchOptionsError);
    expect((thrown as IdstitchOptionsError).option).toBe(option);
    expect((thrown as Error).message).toContain(`\`${option}\``);
  });

  it('never puts a secret into an options error', () => {
    const attempt = () =>
      resolveMixpanelOptions({
        token: 'tok',
        serviceAccount: { username: 'u', secret: 'TOPSECRET' },
        projectId: 'x',
      });
    expect(attempt).toThrow(IdstitchOptionsError);
    expect(attempt).not.toThrow(/TOPSECRET/);
  });

  it('turns handleSignals: true into SIGTERM and SIGINT', () => {
    expect(resolveMixpanelOptions({ token: 'tok', handleSignals: true }).signals).toEqual([
      'SIGTERM',
      'SIGINT',
    ]);
    expect(resolveMixpanelOptions({ token: 'tok', handleSignals: ['SIGUSR2'] }).signals).toEqual(['SIGUSR2']);
    expect(resolveMixpanelOptions({ token: 'tok' }).signals).toEqual([]);
  });
});

describe('the spool option, defaulted in one place', () => {
  const withEnv = (env: string | undefined, run: () => void) => {
    const saved = process.env.NODE_ENV;
    if (env === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = env;
    try {
      run();
    } finally {
      process.env.NODE_ENV = saved;
    }
  };

  it('is on in development (NODE_ENV unset or development) under .idstitch/spool, off under test', () => {
    for (const env of [undefined, '', 'development']) {
      withEnv(env, () => {
        expect(resolveMixpanelOptions({ token: 'tok' }).spool).toEqual({
          dir: '.idstitch/spool',
          fsync: 'per-batch',
          fsyncIntervalMs: 1000,
          maxBytes: 1024 ** 3,
          segmentBytes: 8 * 1024 * 1024,
        });
      });
    }
    withEnv('test', () => {
      expect(resolveMixpanelOptions({ token: 'tok' })).toMatchObject({ spool: undefined, spoolHint: false });
    });
  });

  it('is off in production unless a directory is given, with a hint to give one', () => {
    withEnv('production', () => {
      expect(resolveMixpanelOptions({ token: 'tok' })).toMatchObject({ spool: undefined, spoolHint: true });
      expect(resolveMixpanelOptions({ token: 'tok', spool: false })).toMatchObject({ spoolHint: false });
      expect(
        resolveMixpanelOptions({ token: 'tok', spool: { dir: '/var/lib/app/spool' } }).spool,
      ).toMatchObject({ dir: '/var/lib/app/spool', fsync: 'per-batch' });
    });
    withEnv('development', () => {
      expect(resolveMixpanelOptions({ token: 'tok', spool: false }).spool).toBeUndefined();
    });
  });

  it.each([
    [{ spool: 'yes' }, 'spool'],
    [{ spool: null }, 'spool'],
    [{ spool: { dir: '' } }, 'spool.dir'],
    [{ spool: { fsync: 'always' } }, 'spool.fsync'],
    [{ spool: { fsyncIntervalMs: 0 } }, 'spool.fsyncIntervalMs'],
    [{ spool: { maxBytes: 10 } }, 'spool.maxBytes'],
    [{ spool: { maxBytes: 100_000, segmentBytes: 200_000 } }, 'spool.maxBytes'],
  ])('refuses %j at start-up, naming %s and the fix', (extra, option) => {
    const attempt = () => resolveMixpanelOptions({ token: 'tok', ...(extra as object) });
    expect(attempt).toThrow(IdstitchOptionsError);
    try {
      attempt();
    } catch (error) {
      expect((error as IdstitchOptionsError).option).toBe(option);
    }
  });
});
