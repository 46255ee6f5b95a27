import { describe, expect, it } from 'vitest';
import { createIdstitch } from './create.js';
import { MemorySink } from './testing/index.js';
import { webRequestPort } from './web-port.js';

describe('the Web request port (Hono, workerd, Deno, Bun)', () => {
  it('hands the core the path with its query string, as the Node adapters do: UTM parameters are captured', () => {
    const sink = new MemorySink();
    const engine = createIdstitch({ sink, onError: () => {} }, { resolveUserId: () => undefined });
    const request = new Request('https://shop.example.com/landing?utm_source=google&utm_campaign=spring', {
      headers: { host: 'shop.example.com', 'sec-fetch-mode': 'navigate', accept: 'text/html' },
    });
    const port = webRequestPort(request, {}, { ip: undefined });
    engine.handle(port).tracker.track('Viewed');
    expect(sink.events[0]?.properties).toMatchObject({
      utm_source: 'google',
      utm_campaign: 'spring',
      $current_url: 'https://shop.example.com/landing?utm_source=google&utm_campaign=spring',
    });
    expect(port.path).toBe('/landing?utm_source=google&utm_campaign=spring');
  });
});
