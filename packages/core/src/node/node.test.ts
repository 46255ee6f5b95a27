import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { CookieWrite } from '../cookie/cookie-header.js';
import { createIdstitch } from '../create.js';
import type { IdstitchError } from '../errors.js';
import { fakeRequestPort, MemorySink } from '../testing/index.js';
import { handleNodeRequest, nodeRequestPort, writeCookiesBeforeHeaders } from './index.js';

const SECRET = 'node-helper-test-secret-0123456789';

let server: ReturnType<typeof createServer> | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  server = createServer(handler);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('nodeRequestPort', () => {
  it('reads headers and every cookie value from any object that carries Node headers', () => {
    // Koa's ctx and Fastify's request are not IncomingMessages, but both carry `headers`.
    const wrapper = { headers: { cookie: 'a=1; a=2; b=x', 'x-many': ['one', 'two'] }, user: { id: 7 } };
    const port = nodeRequestPort(wrapper, { ip: '203.0.113.1', secure: true, path: '/p?q' });
    expect(port.request).toBe(wrapper);
    expect(port.cookies('a')).toEqual(['1', '2']);
    expect(port.header('x-many')).toBe('one');
    expect(port.header('missing')).toBeUndefined();
    expect(port).toMatchObject({ ip: '203.0.113.1', secure: true, path: '/p?q' });
  });
});

describe('writeCookiesBeforeHeaders', () => {
  const engine = () =>
    createIdstitch<{ headers: IncomingMessage['headers']; userId?: string }>(
      { sink: new MemorySink(), cookie: { secret: SECRET } },
      { resolveUserId: (request) => request.userId },
    );

  it('settles when the headers go out and appends to the app’s own Set-Cookie', async () => {
    const idstitch = engine();
    const url = await serve((req, res) => {
      const request = Object.assign(req, { userId: undefined as string | undefined });
      handleNodeRequest(idstitch, request, res, { ip: undefined, secure: false, path: req.url ?? '/' });
      res.setHeader('set-cookie', 'app=1; Path=/');
      request.userId = 'U1'; // a login inside the handler is seen at settle time
      res.end('ok');
    });
    const response = await fetch(url);
    const cookies = response.headers.getSetCookie();
    expect(cookies[0]).toBe('app=1; Path=/');
    expect(cookies[1]).toMatch(/^idstitch_device=1\.[0-9a-f-]{36}\.[A-Za-z0-9_-]{16}\./);
  });

  it('hands the cookies to a custom writer (a framework cookie API) instead of serialising them', async () => {
    const idstitch = engine();
    const seen: CookieWrite[] = [];
    const url = await serve((req, res) => {
      const scope = idstitch.handle(nodeRequestPort(req, { ip: undefined, secure: false, path: '/' }));
      writeCookiesBeforeHeaders(res, scope, idstitch.options.report, (writes, response) => {
        seen.push(...writes);
        response.setHeader(
          'set-cookie',
          writes.map((write) => `${write.name}=custom`),
        );
      });
      res.end();
    });
    const response = await fetch(url);
    expect(seen.map((write) => write.name)).toEqual(['idstitch_device']);
    expect(response.headers.getSetCookie()).toEqual(['idstitch_device=custom']);
  });

  it('reports a failing writer and still sends the response', async () => {
    const errors: IdstitchError[] = [];
    const idstitch = createIdstitch(
      { sink: new MemorySink(), onError: (error) => errors.push(error) },
      { resolveUserId: () => undefined },
    );
    const url = await serve((req, res) => {
      const scope = idstitch.handle(nodeRequestPort(req, { ip: undefined, secure: false, path: '/' }));
      writeCookiesBeforeHeaders(res, scope, idstitch.options.report, () => {
        throw new Error('Cannot send secure cookie over unencrypted connection');
      });
      res.end('body');
    });
    const response = await fetch(url);
    expect(await response.text()).toBe('body');
    expect(errors.map((error) => error.code)).toEqual(['cookie_write_failed']);
  });
});

describe('RequestPort.isCookieStale', () => {
  it('rewrites an unchanged device cookie the framework verified with a retired key', () => {
    const idstitch = createIdstitch({ sink: new MemorySink() }, { resolveUserId: () => undefined });
    const first = idstitch.handle(fakeRequestPort()).settle()[0]!;
    const again = (stale: boolean) =>
      idstitch
        .handle({
          ...fakeRequestPort({ cookies: { [first.name]: first.value } }),
          isCookieStale: () => stale,
        })
        .settle();
    expect(again(false)).toEqual([]);
    expect(again(true)).toEqual([expect.objectContaining({ name: first.name, value: first.value })]);
  });
});
