#!/usr/bin/env node
// Release check: builds and packs every publishable package as `pnpm publish` would, then checks each tarball
// with publint --strict and Are the Types Wrong (attw, every resolution mode: node10, node16 CJS/ESM, bundler),
// plus what neither tool knows about this repository: the MIT LICENSE is shipped, nothing points at unshipped
// sources (no source maps, no src/, no `@idstitch/source` condition), no `workspace:` range is left, the
// registry page's links are absolute, and npm refuses to pack (only pnpm rewrites what publishing needs).
//
//   node scripts/check-packages.mjs            build, pack into a temporary folder, check
// The smoke test (scripts/smoke-packages.mjs) runs the same checks on the tarballs it installs.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
export const REPOSITORY = 'https://github.com/idstitch/idstitch';

/** The publishable package folders (`packages/*`). */
export const packageNames = () => readdirSync(join(root, 'packages')).filter((name) => !name.startsWith('.'));

/** Builds every package and packs it with pnpm into `destination`; returns package name → tarball path. */
export function buildAndPack(destination) {
  mkdirSync(destination, { recursive: true });
  execFileSync('pnpm', ['-r', '--filter', './packages/**', 'run', 'build'], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const tarballs = {};
  for (const name of packageNames()) {
    const out = execFileSync('pnpm', ['pack', '--pack-destination', destination], {
      cwd: join(root, 'packages', name),
      stdio: ['ignore', 'pipe', 'inherit'],
      encoding: 'utf8',
    });
    tarballs[`@idstitch/${name}`] = out.trim().split('\n').at(-1);
  }
  return tarballs;
}

const binOf = (pkg, bin) => {
  // Root dev dependencies; publint does not export its package.json, so it is read from node_modules.
  const manifest = join(root, 'node_modules', pkg, 'package.json');
  const { bin: bins } = JSON.parse(readFileSync(manifest, 'utf8'));
  return join(manifest, '..', typeof bins === 'string' ? bins : bins[bin]);
};

/** Runs a Node CLI; returns its output, or throws with it when it exits non-zero. */
function tool(label, script, args) {
  const result = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', cwd: root });
  const output = `${result.stdout}${result.stderr}`;
  if (result.status !== 0) throw new Error(`${label} failed:\n${output}`);
  return output;
}

/** Files in a tarball, and the text of some of them. */
function readTarball(tarball) {
  const dir = mkdtempSync(join(tmpdir(), 'idstitch-pack-'));
  try {
    execFileSync('tar', ['xzf', tarball, '-C', dir]);
    const files = [];
    const walk = (folder, prefix) => {
      for (const entry of readdirSync(folder, { withFileTypes: true })) {
        const rel = `${prefix}${entry.name}`;
        if (entry.isDirectory()) walk(join(folder, entry.name), `${rel}/`);
        else files.push(rel);
      }
    };
    walk(join(dir, 'package'), '');
    const texts = Object.fromEntries(
      ['package.json', 'LICENSE', 'README.md']
        .filter((file) => files.includes(file))
        .map((file) => [file, readFileSync(join(dir, 'package', file), 'utf8')]),
    );
    return { files, manifest: JSON.parse(texts['package.json']), text: (file) => texts[file] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A Markdown link whose target is neither absolute nor an in-page anchor: dead on the registry page. */
const RELATIVE_LINK = /\]\((?!https?:\/\/|#|mailto:)([^)]*)\)/g;

/** The repository's own rules for one packed package; returns the problems found. */
export function repositoryProblems(name, tarball) {
  const { files, manifest, text } = readTarball(tarball);
  const problems = [];
  const license = readFileSync(join(root, 'LICENSE'), 'utf8');
  if (!files.includes('LICENSE')) problems.push('LICENSE is not shipped');
  else if (text('LICENSE') !== license) problems.push('LICENSE differs from the repository root LICENSE');
  if (manifest.license !== 'MIT') problems.push(`license is ${manifest.license}, not MIT`);
  const maps = files.filter((file) => file.endsWith('.map'));
  if (maps.length > 0)
    problems.push(`ships source maps of unshipped sources: ${maps.slice(0, 3).join(', ')}…`);
  if (files.some((file) => file.startsWith('src/'))) problems.push('ships src/');
  const json = JSON.stringify(manifest);
  if (json.includes('workspace:')) problems.push('a workspace: range is left in package.json');
  if (json.includes('@idstitch/source')) problems.push('the @idstitch/source condition is left in exports');
  if (!String(manifest.repository?.url).includes('github.com/idstitch/idstitch')) {
    problems.push('repository is missing');
  }
  if (!manifest.homepage?.startsWith(REPOSITORY)) problems.push('homepage is missing');
  if (!manifest.bugs?.url?.startsWith(REPOSITORY)) problems.push('bugs is missing');
  if (!files.includes('README.md')) problems.push('README.md is not shipped');
  else {
    const links = [...text('README.md').matchAll(RELATIVE_LINK)].map((match) => match[1]);
    if (links.length > 0)
      problems.push(`README links are relative (dead on the registry): ${links.join(', ')}`);
  }
  if (manifest.name !== name) problems.push(`packed ${manifest.name}, expected ${name}`);
  return problems;
}

/** npm must refuse to pack: it would ship `workspace:^` and the source condition. */
export function npmPackProblems() {
  const result = spawnSync('npm', ['pack', '--dry-run'], {
    cwd: join(root, 'packages', 'express'),
    encoding: 'utf8',
    env: { ...process.env, npm_config_user_agent: undefined },
  });
  const output = `${result.stdout}${result.stderr}`;
  return result.status !== 0 && output.includes('Refusing to pack')
    ? []
    : [`npm pack was not refused (exit ${result.status}):\n${output}`];
}

/** Every check on the packed tarballs; throws naming each problem. */
export function checkTarballs(tarballs) {
  const publint = binOf('publint', 'publint');
  const attw = binOf('@arethetypeswrong/cli', 'attw');
  const problems = npmPackProblems();
  for (const [name, tarball] of Object.entries(tarballs)) {
    for (const problem of repositoryProblems(name, tarball)) problems.push(`${name}: ${problem}`);
    try {
      const lint = tool(`publint --strict ${name}`, publint, ['run', tarball, '--strict']);
      if (!lint.includes('All good')) problems.push(`${name}: publint --strict:\n${lint}`);
      tool(`attw ${name}`, attw, [tarball, '--profile', 'strict', '--format', 'ascii', '--no-emoji']);
    } catch (error) {
      problems.push(`${name}: ${error.message}`);
    }
  }
  if (problems.length > 0) throw new Error(`package checks failed:\n- ${problems.join('\n- ')}`);
  console.log(
    `packages: ${Object.keys(tarballs).join(', ')} pass publint --strict, attw (node10, node16 CJS/ESM, bundler) ` +
      'and the repository checks (LICENSE, no maps or src, no workspace: or source condition, absolute links, npm refused)',
  );
}

if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) {
  const destination = mkdtempSync(join(tmpdir(), 'idstitch-packages-'));
  try {
    checkTarballs(buildAndPack(destination));
  } catch (error) {
    console.error(error.message);
    process.exitCode = 1;
  } finally {
    rmSync(destination, { recursive: true, force: true });
  }
}
