import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';

const example = resolve(import.meta.dirname, '..');

/**
 * `pnpm start` runs the sources with tsx, whose esbuild emits no decorator metadata: this boots the app exactly
 * that way, so a constructor parameter without @Inject() would fail here even though the SWC-compiled tests pass.
 */
it('starts with tsx (no decorator metadata), serves a request and flushes on SIGTERM', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'idstitch-example-nestjs-'));
  const tsx = createRequire(import.meta.url).resolve('tsx/cli');
  const child = spawn(
    process.execPath,
    [
      tsx,
      '--tsconfig',
      join(example, 'tsconfig.json'),
      '--conditions=@idstitch/source',
      join(example, 'src/main.ts'),
    ],
    { cwd, env: { ...process.env, PORT: '0', NODE_ENV: 'development' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  try {
    let output = '';
    const url = await new Promise<string>((resolveUrl, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const match = /on (http:\/\/\S+)/.exec(output);
        if (match) resolveUrl(match[1]!.replace('[::1]', 'localhost'));
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('exit', (code) => reject(new Error(`exited with ${code} before listening:\n${output}`)));
    });
    const response = await fetch(`${url}/pricing`);
    expect(response.status).toBe(200);
    expect(response.headers.get('set-cookie')).toMatch(/^idstitch_device=/);
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    child.kill('SIGTERM');
    await exited;
    const recorded = readFileSync(join(cwd, '.idstitch/events.ndjson'), 'utf8');
    expect(recorded).toContain('"event":"Page Viewed"');
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(cwd, { recursive: true, force: true });
  }
});
