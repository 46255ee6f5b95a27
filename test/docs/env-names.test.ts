import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');

/**
 * The one set of environment variable names that READMEs, docs, examples and the worker CLI use for the same
 * settings. Anything else named like a Mixpanel or idstitch setting is a second spelling a reader would copy.
 */
const NAMES = new Set([
  'MIXPANEL_TOKEN',
  'MIXPANEL_SERVICE_ACCOUNT_USERNAME',
  'MIXPANEL_SERVICE_ACCOUNT_SECRET',
  'MIXPANEL_PROJECT_ID',
  'MIXPANEL_API_SECRET',
  'MIXPANEL_HOST',
  'IDSTITCH_COOKIE_SECRET',
  'IDSTITCH_REDIS_PREFIX',
  'IDSTITCH_OUTBOX_OPTIONS',
  'IDSTITCH_INSPECTOR_TOKEN',
  'IDSTITCH_ENVIRONMENT',
  'REDIS_URL',
]);
/** Names that look like settings but are not environment variables (Markdown mentions them in backticks). */
const NOT_ENV = new Set(['MIXPANEL_LIMITS', 'IDSTITCH_OPTIONS']);
const NAME = '((?:MIXPANEL|MP|IDSTITCH|REDIS)_[A-Z_]+)';
/** `env.NAME`, `env['NAME']` or `getOrThrow('NAME')`, `NAME=value` in a shell line, and `NAME` in Markdown. */
const ENV_USE = new RegExp(
  `env(?:\\.|\\[['"])${NAME}|\\(['"]${NAME}['"]|(?:^|\\s)${NAME}=|\`${NAME}\``,
  'gm',
);

function* sources(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (['node_modules', 'dist', '.smoke', '.idstitch', '.git', 'bench'].includes(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sources(path);
    else if (/\.(md|ts|mjs)$/.test(entry.name) && !entry.name.endsWith('.test.ts')) yield path;
  }
}

it('READMEs, docs, examples and packages spell each setting one way', () => {
  const strays: string[] = [];
  for (const file of sources(root)) {
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(ENV_USE)) {
      const name = match[1] ?? match[2] ?? match[3] ?? (file.endsWith('.md') ? match[4] : undefined);
      if (name === undefined) continue;
      if (!NAMES.has(name) && !NOT_ENV.has(name)) strays.push(`${relative(root, file)}: ${name}`);
    }
  }
  expect(strays).toEqual([]);
});

it('the outbox worker CLI reads the same names', () => {
  const cli = readFileSync(join(root, 'packages/redis/src/cli/worker-cli.ts'), 'utf8');
  for (const name of [
    'MIXPANEL_TOKEN',
    'MIXPANEL_SERVICE_ACCOUNT_USERNAME',
    'MIXPANEL_SERVICE_ACCOUNT_SECRET',
    'MIXPANEL_PROJECT_ID',
    'REDIS_URL',
  ]) {
    expect(cli).toContain(`env.${name}`);
  }
});
