import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchSend, type HttpRequest, TransportError } from './transport.js';

let server: http.Server;
let base: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      switch (req.url) {
        case '/ok':
          res.writeHead(429, { 'retry-after': '7' }).end('{"error":"slow down"}');
          return;
        case '/stalled-body':
          // Headers and part of the body, then nothing: only a whole-request timeout ends this.
          res.writeHead(200, { 'content-length': '100' });
          res.write('{"code":');
          return;
        case '/huge':
          res.writeHead(500);
          res.end('x'.repeat(1024 * 1024));
          return;
        case '/redirect':
          res.writeHead(307, { location: 'https://elsewhere.example/import' }).end();
          return;
        default:
          // Never answers.
          return;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

function request(path: string, overrides: Partial<HttpRequest> = {}): HttpRequest {
  return {
    url: `${base}${path}`,
    headers: { 'content-type': 'application/json' },
    body: Buffer.from('[]'),
    timeoutMs: 5000,
    signal: new AbortController().signal,
    ...overrides,
  };
}

async function failure(promise: Promise<unknown>): Promise<TransportError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TransportError);
  return error as TransportError;
}

describe('fetchSend', () => {
  it('returns the status, Retry-After and body', async () => {
    expect(await fetchSend(request('/ok'))).toEqual({
      status: 429,
      retryAfter: '7',
      location: null,
      body: '{"error":"slow down"}',
    });
  });

  it('times out a response whose body stalls after the headers', async () => {
    const error = await failure(fetchSend(request('/stalled-body', { timeoutMs: 100 })));
    expect(error.kind).toBe('timeout');
  });

  it('times out a server that never answers', async () => {
    expect((await failure(fetchSend(request('/silent', { timeoutMs: 100 })))).kind).toBe('timeout');
  });

  it('reads at most 64 KiB of a response body', async () => {
    const response = await fetchSend(request('/huge'));
    expect(response.status).toBe(500);
    expect(response.body.length).toBe(64 * 1024);
  });

  it('does not follow redirects, which would turn the POST into a lost GET', async () => {
    expect(await fetchSend(request('/redirect'))).toMatchObject({
      status: 307,
      location: 'https://elsewhere.example/import',
    });
  });

  it('stops when close() aborts, and says so', async () => {
    const controller = new AbortController();
    const sending = fetchSend(request('/silent', { signal: controller.signal }));
    setTimeout(() => controller.abort(), 20);
    expect((await failure(sending)).kind).toBe('aborted');
  });

  it('reports a refused connection as a network failure with its code', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const error = await failure(fetchSend(request('', { url: `http://127.0.0.1:${port}/import` })));
    expect([error.kind, error.code]).toEqual(['network', 'ECONNREFUSED']);
  });
});
