#!/usr/bin/env node
// Docs that must compile: every ```ts block of the READMEs and docs/ is extracted to its own module under
// .docs-check/ and type-checked with tsc against the workspace packages' sources (no build needed).
//
// Conventions, in an HTML comment right before a block (invisible on GitHub and the registry page):
//   <!-- typecheck-prelude
//   declare const sink: import('@idstitch/core').Sink;
//   -->                       code prepended to the block (declarations the prose already introduced)
//   <!-- typecheck: skip (reason) -->   the block is not checked; the reason is required. Keep these rare.
// A block whose first line is a file-name comment (`// billing.service.ts`) is that file: the blocks of one
// Markdown file share a folder, so `import { BillingService } from './billing.service'` finds it.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const out = join(root, '.docs-check');
const docs = [
  'README.md',
  ...readdirSync(join(root, 'packages')).map((name) => `packages/${name}/README.md`),
  ...readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
  ...readdirSync(join(root, 'examples')).map((name) => `examples/${name}/README.md`),
].filter((file) => {
  try {
    readFileSync(join(root, file));
    return true;
  } catch {
    return false;
  }
});

/** The ```ts blocks of one Markdown file, with their line numbers, prelude and skip reason. */
function blocks(file) {
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  const found = [];
  for (let i = 0; i < lines.length; i += 1) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i])) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !lines[end].startsWith('```')) end += 1;
    // The comment just above the fence (blank lines allowed between).
    let above = i - 1;
    while (above >= 0 && lines[above].trim() === '') above -= 1;
    let prelude = '';
    let skip;
    if (above >= 0 && lines[above].trim().endsWith('-->')) {
      let open = above;
      while (open > 0 && !lines[open].includes('<!--')) open -= 1;
      const comment = lines.slice(open, above + 1).join('\n');
      const skipMatch = /<!--\s*typecheck:\s*skip\s*\((.+)\)\s*-->/.exec(comment);
      if (skipMatch) skip = skipMatch[1];
      else if (/<!--\s*typecheck:\s*skip/.test(comment)) {
        throw new Error(`${file}:${above + 1}: typecheck: skip needs a reason in parentheses`);
      }
      const preludeMatch = /<!--\s*typecheck-prelude\n([\s\S]*?)-->/.exec(comment);
      if (preludeMatch) prelude = preludeMatch[1];
    }
    found.push({ line: start + 1, code: lines.slice(start, end).join('\n'), prelude, skip });
    i = end;
  }
  return found;
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const sources = new Map();
const skipped = [];
for (const file of docs) {
  for (const [n, block] of blocks(file).entries()) {
    if (block.skip !== undefined) {
      skipped.push(`${file}:${block.line} (${block.skip})`);
      continue;
    }
    const folder = file.replace(/[/.]/g, '_');
    const named = /^\/\/ ([\w.-]+)\.ts\b/.exec(block.code);
    const name = `${folder}/${named ? named[1] : `block-${n + 1}`}.ts`;
    mkdirSync(join(out, folder), { recursive: true });
    const preludeLines = block.prelude === '' ? 0 : block.prelude.split('\n').length;
    // The block's own lines start after the prelude; errors are mapped back to the Markdown line.
    writeFileSync(join(out, name), `${block.prelude}${block.code}\nexport {};\n`);
    sources.set(name, { file, line: block.line, preludeLines });
  }
}
// One program per Markdown file: a block's `declare module` augmentation must not make another file's blocks pass.
const tsc = join(root, 'node_modules/typescript/bin/tsc');
let output = '';
for (const folder of new Set([...sources.keys()].map((name) => name.split('/')[0]))) {
  writeFileSync(
    join(out, folder, 'tsconfig.json'),
    JSON.stringify({
      extends: '../../tsconfig.base.json',
      // As most apps compile: a bundler-style resolution (relative imports without extensions), ES modules.
      compilerOptions: {
        noEmit: true,
        noUnusedLocals: false,
        types: ['node'],
        module: 'preserve',
        moduleResolution: 'bundler',
      },
      include: ['*.ts'],
    }),
  );
  try {
    execFileSync(process.execPath, [tsc, '-p', join(out, folder), '--pretty', 'false'], {
      cwd: out,
      encoding: 'utf8',
    });
  } catch (error) {
    output += `${error.stdout ?? ''}${error.stderr ?? ''}`;
  }
}
const problems = output
  .split('\n')
  .filter((line) => line.trim() !== '')
  .map((line) => {
    const match = /^([^(]+)\((\d+),(\d+)\): (.*)$/.exec(line.replaceAll('\\', '/'));
    const source = match && sources.get(match[1]);
    if (!source) return line;
    const blockLine = Number(match[2]) - source.preludeLines;
    const where =
      blockLine >= 1
        ? `${source.file}:${source.line + blockLine - 1}`
        : `${source.file}:${source.line} (prelude)`;
    return `${where}:${match[3]} ${match[4]}`;
  });
if (problems.length > 0) {
  console.error(`docs: code blocks that do not type-check:\n${problems.join('\n')}`);
  process.exitCode = 1;
} else {
  rmSync(out, { recursive: true, force: true });
  console.log(
    `docs: ${sources.size} TypeScript blocks from ${docs.length} Markdown files type-check` +
      (skipped.length > 0 ? `; not checked: ${skipped.join(', ')}` : ''),
  );
}
