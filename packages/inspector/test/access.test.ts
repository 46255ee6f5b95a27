import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IdstitchOptionsError } from '@idstitch/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type InspectorOptions, inspector, localFileSource } from '../src/index.js';

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
