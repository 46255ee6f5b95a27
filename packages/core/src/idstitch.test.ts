import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createIdstitch } from './idstitch.js';
import { LocalSink } from './local/local-sink.js';
import { fakeRequestPort } from './testing/index.js';

describe('createIdstitch without a sink (the embedded default)', () => {
  it('records to a LocalSink at .idstitch/events.ndjson in the ID Merge mode', async () => {
    const cwd = process.cwd();
    const dir = mkdtempSync(join(tmpdir(), 'idstitch-default-sink-'));
    process.chdir(dir);
    try {
      const engine = createIdstitch<{ userId?: string }>(
        { idMerge: 'original', cookie: { secret: 'x'.repeat(16) } },
        { resolveUserId: (request) => request.userId },
      );
      const sink = engine.options.sink;
      expect(sink).toBeInstanceOf(LocalSink);
      expect((sink as LocalSink).mode).toBe('original');
      expect((sink as LocalSink).path).toBe(join(realpathSync(dir), '.idstitch/events.ndjson'));
      engine.handle(fakeRequestPort({ request: { userId: 'u1' } })).tracker.track('Signed In');
      await engine.flush();
      const { messages } = await (sink as LocalSink).read();
      const signedIn = messages.find((m) => m.kind === 'event' && m.payload.event === 'Signed In');
      expect(signedIn?.kind === 'event' && signedIn.payload.properties.distinct_id).toBe('u1');
      await engine.close();
    } finally {
      process.chdir(cwd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
