import { readdir, readFile } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

export interface StaticFile {
  body: Buffer;
  type: string;
  /** Hashed asset names never change content, so they can be cached for good. */
  immutable: boolean;
}

async function listFiles(root: string, dir = root): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((entry) =>
      entry.isDirectory() ? listFiles(root, join(dir, entry.name)) : [relative(root, join(dir, entry.name))],
    ),
  );
  return nested.flat();
}

/**
 * The pre-built page, read once into memory. Only files that exist in the folder are served, looked up by
 * exact name, so no request path can reach outside it.
 */
export async function loadStaticFiles(root: string): Promise<Map<string, StaticFile>> {
  const files = new Map<string, StaticFile>();
  for (const name of await listFiles(root)) {
    if (name.endsWith('.map')) continue;
    const key = `/${name.split(sep).join('/')}`;
    files.set(key, {
      body: await readFile(join(root, name)),
      type: TYPES[extname(name)] ?? 'application/octet-stream',
      immutable: key.startsWith('/assets/'),
    });
  }
  return files;
}
