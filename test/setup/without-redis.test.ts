import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

/**
 * "Run every test" on a machine without redis-server: the Redis files that start one are skipped with the reason
 * and the fix printed, instead of each failing (and failing again in its afterAll). Simulated by an empty PATH.
 */
it('skips the Redis server tests with the reason when redis-server is not installed', async () => {
  const emptyPath = mkdtempSync(join(tmpdir(), 'idstitch-no-redis-'));
  const vitest = join(createRequire(import.meta.url).resolve('vitest/package.json'), '..', 'vitest.mjs');
  try {
    const env = { ...process.env, PATH: emptyPath, CI: '', NO_COLOR: '1', FORCE_COLOR: '0' };
    const files = ['packages/redis/test/identity-store.test.ts', 'test/docs/env-names.test.ts'];
    const { stdout, stderr } = await run(process.execPath, [vitest, 'run', ...files], { cwd: root, env });
    const output = `${stdout}${stderr}`;
    expect(output).toContain('redis-server is not installed');
    expect(output).toContain('packages/redis/test/identity-store.test.ts');
    expect(output).toContain('apt-get install redis-server');
    expect(output).not.toContain("reading 'stop'");
    expect(output).toMatch(/Test Files\s+\S*1 passed/);
  } finally {
    rmSync(emptyPath, { recursive: true, force: true });
  }
}, 60_000);

it('fails in CI without redis-server: CI must run the Redis tests', async () => {
  const emptyPath = mkdtempSync(join(tmpdir(), 'idstitch-no-redis-'));
  const vitest = join(createRequire(import.meta.url).resolve('vitest/package.json'), '..', 'vitest.mjs');
  try {
    const env = { ...process.env, PATH: emptyPath, CI: 'true', NO_COLOR: '1', FORCE_COLOR: '0' };
    const failed = await run(process.execPath, [vitest, 'run', 'test/docs/env-names.test.ts'], {
      cwd: root,
      env,
    }).then(
      () => '',
      (error: { stdout: string; stderr: string }) => `${error.stdout}${error.stderr}`,
    );
    expect(failed).toContain('CI must run them');
  } finally {
    rmSync(emptyPath, { recursive: true, force: true });
  }
}, 60_000);
