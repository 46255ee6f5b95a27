/**
 * `@idstitch/core/web` must run where Node's built-ins do not exist (Cloudflare workerd without
 * `nodejs_compat`): bundling it for a neutral platform with nothing external must succeed, so no module it
 * reaches imports `node:` anything (nor a package that does).
 */
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const entry = fileURLToPath(new URL('../../packages/core/src/web.ts', import.meta.url));

async function bundle(file: string) {
  return build({
    entryPoints: [file],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    conditions: ['@idstitch/source', 'workerd', 'worker', 'browser'],
    logLevel: 'silent',
  });
}

describe('@idstitch/core/web', () => {
  it('bundles for a neutral platform without a single node: import', async () => {
    const result = await bundle(entry);
    const code = result.outputFiles[0]!.text;
    expect(code).not.toMatch(/from\s*["']node:|require\(["']node:|import\(["']node:/);
    expect(code).toContain('createPortableIdstitch');
  });

  it('the Node entry point does not (the check can fail)', async () => {
    const node = fileURLToPath(new URL('../../packages/core/src/index.ts', import.meta.url));
    await expect(bundle(node)).rejects.toThrow(/node:/);
  });
});
