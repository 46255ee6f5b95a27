import { describe, expect, it } from 'vitest';
import { interpretResponse } from './response.js';

const body = (value: unknown) => JSON.stringify(value);

describe('interpretResponse', () => {
  it('accepts /import 200', () => {
    expect(
      interpretResponse('import', {
        status: 200,
        body: body({ code: 200, num_records_imported: 3, status: 'OK' }),
      }),
    ).toEqual({ type: 'delivered' });
  });

  it.each(['insert_id', '$insert_id'])('reads strict failed_records keyed %s', (key) => {
    const outcome = interpretResponse('import', {
      status: 400,
      body: body({
        code: 400,
        error: 'some data points in the request failed validation',
        num_records_imported: 1,
        status: 'Bad Request',
        failed_records: [
          { index: 1, [key]: 'abc', field: 'properties.time', message: "'properties.time' is invalid" },
        ],
      }),
    });
    expect(outcome).toEqual({
      type: 'partial',
      failed: [
        { index: 1, insertId: 'abc', field: 'properties.time', message: "'properties.time' is invalid" },
      ],
    });
  });

  it('treats a 400 without failed_records as refusing the whole batch', () => {
    expect(interpretResponse('import', { status: 400, body: body({ error: 'bad json' }) })).toEqual({
      type: 'rejected',
      detail: 'HTTP 400: bad json',
    });
  });

  it.each(['track', 'engage', 'groups'] as const)('checks the body of a /%s 200', (endpoint) => {
    expect(interpretResponse(endpoint, { status: 200, body: '1' }).type).toBe('delivered');
    expect(interpretResponse(endpoint, { status: 200, body: body({ status: 1, error: null }) }).type).toBe(
      'delivered',
    );
    expect(interpretResponse(endpoint, { status: 200, body: '0' }).type).toBe('rejected');
    expect(
      interpretResponse(endpoint, { status: 200, body: body({ status: 0, error: 'invalid token' }) }),
    ).toEqual({
      type: 'rejected',
      detail: 'HTTP 200 with body {"status":0,"error":"invalid token"}',
    });
  });

  it('classifies errors', () => {
    expect(
      interpretResponse('import', { status: 401, body: body({ error: 'Invalid credentials' }) }),
    ).toEqual({
      type: 'unauthorized',
      detail: 'HTTP 401: Invalid credentials',
    });
    expect(interpretResponse('track', { status: 403, body: '' }).type).toBe('unauthorized');
    expect(interpretResponse('import', { status: 413, body: '' }).type).toBe('too_large');
    expect(interpretResponse('import', { status: 429, body: '' }).type).toBe('retry');
    expect(interpretResponse('import', { status: 503, body: '<html>down</html>' })).toEqual({
      type: 'retry',
      detail: 'HTTP 503: <html>down</html>',
    });
    expect(interpretResponse('import', { status: 404, body: '' })).toEqual({
      type: 'rejected',
      detail: 'HTTP 404',
    });
    expect(interpretResponse('import', { status: 301, body: '', location: 'https://x/' }).type).toBe(
      'rejected',
    );
  });

  it('keeps huge error bodies out of messages', () => {
    const outcome = interpretResponse('import', { status: 500, body: 'x'.repeat(10_000) });
    expect(outcome.type === 'retry' && outcome.detail.length).toBeLessThan(250);
  });
});
