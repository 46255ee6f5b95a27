import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import swc from 'unplugin-swc';
import { defaultClientConditions, defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources, so tests need no build.
const source = '@idstitch/source';

/**
 * Test files that start their own redis-server. On a machine without one they are skipped with the reason
 * printed (instead of every file failing); CI (CI=true) must have it: `.ci/run` installs it with
 * scripts/ensure-redis.sh, so there a missing redis-server fails the run.
 */
function redisTestFiles(): string[] {
  return ['packages/redis/test', 'test/inspector'].flatMap((folder) =>
    readdirSync(folder)
      .filter((name) => name.endsWith('.test.ts'))
      .map((name) => join(folder, name))
      .filter((file) => readFileSync(file, 'utf8').includes('startRedisServer(')),
  );
}
const withoutRedis = spawnSync('redis-server', ['--version']).error !== undefined;
const skipped = withoutRedis ? redisTestFiles() : [];
if (skipped.length > 0) {
  const reason =
    'redis-server is not installed (not on PATH): skipping the Redis tests that start one: ' +
    `${skipped.join(', ')}. Install it (apt-get install redis-server, or bash scripts/ensure-redis.sh as root) to run them.`;
  if (process.env.CI === 'true') throw new Error(`${reason} CI must run them.`);
  console.warn(`\n${reason}\n`);
}

export default defineConfig({
  // SWC instead of esbuild: NestJS relies on decorator metadata, which esbuild drops.
  plugins: [swc.vite({ module: { type: 'es6' } })],
  resolve: { conditions: [source, ...defaultClientConditions] },
  ssr: { resolve: { conditions: [source, ...defaultServerConditions] } },
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'packages/*/test/**/*.test.ts',
      'test/**/*.test.ts',
      'examples/*/test/**/*.test.ts',
      'bench/test/**/*.test.ts',
    ],
    exclude: ['**/node_modules/**', '**/dist/**', ...skipped],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
