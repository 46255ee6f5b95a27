import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IdstitchOptionsError } from '@idstitch/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type InspectorOptions, inspector, localFileSource } from '../src/index.js';
import { accessCheck, isLoopbackHost } from '../src/inspect/access.js';

const TOKEN = 'inspector-secret-0123456789';
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((done) => server.close(done))));
});

function inProduction<T>(run: () => T): T {
  const previous = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    return run();
  } finally {
    process.env.NODE_ENV = previous;
  }
}

function refusal(options: InspectorOptions): IdstitchOptionsError {
  try {
    inProduction(() => inspector(options));
  } catch (error) {
    if (error instanceof IdstitchOptionsError) return error;
    throw error;
  }
  throw new Error('inspector() was not refused');
}

async function serve(options: InspectorOptions): Promise<string> {
  const handler = inProduction(() =>
    inspector({
      uiDir: '/nonexistent',
      // Never the working directory's default file: other tests may have recorded there.
      source: localFileSource(join(tmpdir(), `idstitch-access-${process.pid}-none.ndjson`)),
      ...options,
    }),
  );
  const server = createServer((request, response) => handler(request, response));
  servers.push(server);
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('the inspector in production', () => {
  it('is refused unless explicitly enabled, even with a token', () => {
    const error = refusal({ token: TOKEN });
    expect(error.message).toContain('allowInProduction');
    expect(error.message).toContain('NODE_ENV is production');
  });

  it('is refused when enabled but not protected by a token or an authorize check', () => {
    const error = refusal({ allowInProduction: true });
    expect(error.message).toContain('token');
    expect(error.message).toContain('must be protected');
  });

  it('refuses a short token', () => {
    expect(() => inspector({ token: 'short' })).toThrow(/at least 16 characters/);
  });

  it('with a token: 401 without it; ?token= trades it for an HttpOnly cookie; Bearer and the cookie pass', async () => {
    const base = await serve({ allowInProduction: true, token: TOKEN });
    const denied = await fetch(`${base}/api/snapshot`);
    expect(denied.status).toBe(401);
    expect(await fetch(`${base}/api/snapshot?token=wrong-token-0123456789`).then((r) => r.status)).toBe(401);

    const login = await fetch(`${base}/?token=${TOKEN}&x=1`, { redirect: 'manual' });
    expect(login.status).toBe(303);
    expect(login.headers.get('location')).toBe('/?x=1');
    const cookie = login.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^idstitch_inspector=[0-9a-f]{64}; Path=\/; HttpOnly; SameSite=Strict/);
    expect(cookie).not.toContain(TOKEN);

    const withCookie = await fetch(`${base}/api/snapshot`, { headers: { cookie: cookie.split(';')[0]! } });
    expect(withCookie.status).toBe(200);
    expect(((await withCookie.json()) as { problem: string }).problem).toContain('Nothing recorded yet');
    const withBearer = await fetch(`${base}/api/snapshot`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(withBearer.status).toBe(200);
  });

  it('with an authorize check: 403 when it says no (or throws), served when it says yes', async () => {
    const base = await serve({
      allowInProduction: true,
      authorize: (request) => {
        if (request.headers['x-boom']) throw new Error('boom');
        return request.headers['x-admin'] === 'yes';
      },
    });
    expect((await fetch(`${base}/api/snapshot`)).status).toBe(403);
    expect((await fetch(`${base}/api/snapshot`, { headers: { 'x-boom': '1' } })).status).toBe(403);
    expect((await fetch(`${base}/api/snapshot`, { headers: { 'x-admin': 'yes' } })).status).toBe(200);
  });
});

/** A development inspector (no token, no authorize) on a loopback port. */
async function serveUnprotected(): Promise<number> {
  const handler = inspector({
    uiDir: '/nonexistent',
    source: localFileSource(join(tmpdir(), `idstitch-access-${process.pid}-none.ndjson`)),
  });
  const server = createServer((request, response) => handler(request, response));
  servers.push(server);
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  return (server.address() as AddressInfo).port;
}

/** GET with a `Host` header of our choosing (fetch does not let one set it). */
function statusWithHost(port: number, host: string): Promise<number> {
  return new Promise((done, fail) => {
    const request = httpRequest(
      { host: '127.0.0.1', port, path: '/api/snapshot', headers: { host } },
      (response) => {
        response.resume();
        done(response.statusCode ?? 0);
      },
    );
    request.on('error', fail);
    request.end();
  });
}

describe('the inspector without a token or an authorize check (development)', () => {
  it('serves a loopback client that names a loopback host, with or without a port', async () => {
    const port = await serveUnprotected();
    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      'LOCALHOST',
      '127.1.2.3',
      `[::1]:${port}`,
    ]) {
      expect(await statusWithHost(port, host), host).toBe(200);
    }
    expect([
      isLoopbackHost('127.0.0.256'),
      isLoopbackHost('localhost.evil.example'),
      isLoopbackHost('[::2]'),
    ]).toEqual([false, false, false]);
  });

  it('refuses a request naming another host, even from this machine (DNS rebinding): 403', async () => {
    const port = await serveUnprotected();
    expect(await statusWithHost(port, `rebind.evil.example:${port}`)).toBe(403);
    expect(await statusWithHost(port, `127.0.0.1.nip.io:${port}`)).toBe(403);
  });

  it('refuses a client on another machine (an app listening on 0.0.0.0), whatever host it names: 403', async () => {
    const check = accessCheck({}, 'development');
    const written: number[] = [];
    const response = {
      writeHead: (status: number) => written.push(status),
      end: () => {},
    } as unknown as ServerResponse;
    const from = (remoteAddress: string) =>
      ({
        url: '/',
        headers: { host: 'localhost:3000' },
        socket: { remoteAddress },
      }) as unknown as IncomingMessage;
    expect(await check(from('192.0.2.10'), response)).toBe(false);
    expect(await check(from('::ffff:192.0.2.10'), response)).toBe(false);
    expect(await check(from('2001:db8::1'), response)).toBe(false);
    expect(written).toEqual([403, 403, 403]);
    expect(await check(from('::ffff:127.0.0.1'), response)).toBe(true);
    expect(await check(from('::1'), response)).toBe(true);
  });

  it('refuses a request relayed by a proxy on this machine (ngrok, cloudflared, nginx): its client is elsewhere', async () => {
    // A tunnel or reverse proxy running locally connects from 127.0.0.1 and often rewrites Host to the
    // upstream's (`ngrok --host-header=rewrite`, nginx's default `$proxy_host`): both checks pass although
    // the client may be anyone on the internet. Such relays say so in a forwarding header.
    const check = accessCheck({}, 'development');
    const written: number[] = [];
    const response = {
      writeHead: (status: number) => written.push(status),
      end: () => {},
    } as unknown as ServerResponse;
    const relayed = (header: string) =>
      ({
        url: '/',
        headers: { host: 'localhost:3000', [header]: '203.0.113.7' },
        socket: { remoteAddress: '127.0.0.1' },
      }) as unknown as IncomingMessage;
    for (const header of [
      'x-forwarded-for',
      'forwarded',
      'x-real-ip',
      'via',
      'x-forwarded-host',
      'cf-connecting-ip',
    ]) {
      expect(await check(relayed(header), response), header).toBe(false);
    }
    expect(written).toEqual([403, 403, 403, 403, 403, 403]);
  });
});
