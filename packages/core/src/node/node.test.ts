import { createServer, type IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { CookieWrite } from '../cookie/cookie-header.js';
import { createIdstitch } from '../create.js';
import type { IdstitchError } from '../errors.js';
import { fakeRequestPort, MemorySink } from '../testing/index.js';
import {
  beforeHeaders,
  handleNodeRequest,
  type NodeRequestFactReader,
  NodeRequestPort,
  nodeRequestPort,
  openNodeRequest,
  writeCookiesBeforeHeaders,
} from './index.js';

const SECRET = 'node-helper-test-secret-0123456789';

let server: ReturnType<typeof createServer> | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function serve(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  Response?: new (request: IncomingMessage) => ServerResponse,
): Promise<string> {
  server = Response
    ? createServer({ ServerResponse: Response as typeof ServerResponse }, handler)
    : createServer(handler);
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

describe('NodeRequestPort', () => {
  type Req = { headers: IncomingMessage['headers']; userId?: string };
  const reads = { ip: 0, secure: 0, host: 0 };
  const facts: NodeRequestFactReader<Req> = {
    ip: () => {
      reads.ip++;
      throw new Error('the ip getter must not run unless geolocate needs it');
    },
    secure: () => {
      reads.secure++;
      return false;
    },
    host: () => {
      reads.host++;
      return 'app.example';
    },
    path: () => '/p?q=1',
  };

  it('reads a fact only when the core needs it, and once: an unused ip getter that throws is never touched', () => {
    reads.ip = reads.secure = reads.host = 0;
    const errors: IdstitchError[] = [];
    const idstitch = createIdstitch<Req>(
      { sink: new MemorySink(), cookie: { secret: SECRET }, onError: (error) => errors.push(error) },
      { resolveUserId: (request) => request.userId },
    );
    const port = new NodeRequestPort<Req>({ headers: { cookie: 'a=1; a=2' } }, facts);
    const scope = idstitch.handle(port);
    scope.tracker.track('Viewed');
    expect(scope.settle().map((write) => write.name)).toEqual(['idstitch_device']);
    expect(reads.ip).toBe(0);
    expect([port.secure, port.host, port.host, port.path, port.cookies('a')]).toEqual([
      false,
      'app.example',
      'app.example',
      '/p?q=1',
      ['1', '2'],
    ]);
    expect([reads.secure, reads.host]).toEqual([1, 1]);
    expect(errors).toEqual([]);
  });

  it('reads the ip when geolocate needs it', () => {
    const idstitch = createIdstitch<Req>(
      { sink: new MemorySink(), cookie: { secret: SECRET }, geolocate: true },
      { resolveUserId: () => undefined },
    );
    const port = new NodeRequestPort<Req>({ headers: {} }, { ...facts, ip: () => '203.0.113.9' });
    const sink = idstitch.options.sink as MemorySink;
    idstitch.handle(port).tracker.track('Viewed');
    expect(sink.events[0]!.properties.ip).toBe('203.0.113.9');
  });
});

describe('beforeHeaders', () => {
  /** A response class of a framework's own, like Express's `res` between the response and Node's prototype. */
  class FrameworkResponse extends ServerResponse {}

  const engine = () =>
    createIdstitch(
      { sink: new MemorySink(), cookie: { secret: SECRET } },
      { resolveUserId: () => undefined },
    );

  it('settles through one writeHead on a framework response prototype, keeping headers given to writeHead', async () => {
    const idstitch = engine();
    const own: boolean[] = [];
    const url = await serve((req, res) => {
      openNodeRequest(idstitch, nodeRequestPort(req, { ip: undefined, secure: false, path: '/' }), res);
      own.push(Object.hasOwn(res, 'writeHead'));
      res.setHeader('set-cookie', 'replaced=1');
      res.writeHead(200, 'OK', { 'set-cookie': ['app=1; Path=/'], 'x-app': 'yes' });
      res.end();
    }, FrameworkResponse);
    for (let request = 0; request < 2; request++) {
      const response = await fetch(url);
      expect(response.headers.get('x-app')).toBe('yes');
      expect(response.headers.getSetCookie().map((line) => line.split('=')[0])).toEqual([
        'app',
        'idstitch_device',
      ]);
    }
    expect(own).toEqual([false, false]);
    expect(Object.hasOwn(FrameworkResponse.prototype, 'writeHead')).toBe(true);
  });

  it('falls back to a per-response wrapper for a second listener and a response another middleware wrapped', async () => {
    const calls: string[] = [];
    const url = await serve((_req, res) => {
      beforeHeaders(res, { beforeHeaders: () => calls.push('first') });
      beforeHeaders(res, { beforeHeaders: () => calls.push('second') });
      const writeHead = res.writeHead;
      res.writeHead = function wrapped(this: ServerResponse, ...args: unknown[]) {
        calls.push('app wrapper');
        return (writeHead as (...args: unknown[]) => ServerResponse).apply(this, args);
      } as typeof res.writeHead;
      beforeHeaders(res, { beforeHeaders: () => calls.push('third') });
      res.end();
    }, FrameworkResponse);
    await fetch(url);
    expect(calls.sort()).toEqual(['app wrapper', 'first', 'second', 'third']);
  });
});
