import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from './main.js';

const D1 = '9b2f3c1e-5d4a-4b6c-8e7f-0a1b2c3d4e5f';
const D2 = 'c4d5e6f7-0a1b-4c2d-9e3f-4a5b6c7d8e9f';

function line(event: string, deviceId: string, userId?: string): string {
  return JSON.stringify({
    kind: 'event',
    payload: {
      event,
      properties: {
        distinct_id: userId ?? `$device:${deviceId}`,
        time: 1_700_000_000_000,
        $insert_id: `${event}-${deviceId.slice(0, 4)}`,
        $device_id: deviceId,
        ...(userId === undefined ? {} : { $user_id: userId }),
      },
    },
  });
}

// The guide's "Multiple Users, One Device" flow, done right (reset between users).
const CLEAN = [
  line('Viewed', D1),
  line('Identified', D1, 'U1'),
  line('Viewed', D2),
  line('Viewed', D2),
  line('Identified', D2, 'U2'),
];
// The same without reset: U2 logs in on D1.
const SHARED = [
  line('Viewed', D1),
  line('Identified', D1, 'U1'),
  line('Viewed', D1),
  line('Identified', D1, 'U2'),
];

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'idstitch-cli-'));
  mkdirSync(join(dir, '.idstitch'));
  writeFileSync(join(dir, '.idstitch', 'events.ndjson'), `${CLEAN.join('\n')}\n`);
  writeFileSync(join(dir, 'shared.ndjson'), `${SHARED.join('\n')}\n`);
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function run(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    cwd: dir,
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
  });
  return { code, stdout, stderr };
}

describe('idstitch report', () => {
  it('reads .idstitch/events.ndjson by default and prints the tables, clusters and verdict', async () => {
    const { code, stdout, stderr } = await run('report');
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout).toContain(`idstitch identity report · ${join(dir, '.idstitch', 'events.ndjson')}`);
    expect(stdout).toContain('User U1 · 2 IDs · 2 events');
    expect(stdout).toContain('User U2 · 2 IDs · 3 events');
    expect(stdout).toMatch(
      /\| 1 +\| Viewed +\| 9b2f3c1e-\S+ +\| +\| \$device:9b2f\S+ +\| \$device:9b2f\S+ ⇒ U1 +\| retroactively updated +\|/,
    );
    expect(stdout).toContain('QA findings: none');
  });

  it('prints JSON with --json, resolving the file it is given', async () => {
    const { code, stdout } = await run('report', 'shared.ndjson', '--json');
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.source).toBe(join(dir, 'shared.ndjson'));
    expect(report.timelines.map((t: { distinctId: string }) => t.distinctId)).toEqual(['U1', 'U2']);
    expect(report.findings.map((f: { kind: string }) => f.kind)).toEqual([
      'shared_device',
      'user_switch_without_reset',
    ]);
  });

  it('resolves with the API given by --mode', async () => {
    const { stdout } = await run('report', '--mode=original', '--json');
    const report = JSON.parse(stdout);
    expect([report.mode, report.modeInferred]).toEqual(['original', false]);
    // Original ignores $device_id/$user_id pairs: nothing links, so each distinct_id is its own cluster.
    expect(report.totals.clusters).toBe(4);
  });

  it('fails with --fail-on-findings only when there are findings', async () => {
    expect((await run('report', '--fail-on-findings')).code).toBe(0);
    expect((await run('report', 'shared.ndjson', '--fail-on-findings')).code).toBe(1);
  });

  it('explains a missing file and how to get one', async () => {
    const { code, stdout, stderr } = await run('report', 'nope.ndjson');
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain(`no events file at ${join(dir, 'nope.ndjson')}`);
    expect(stderr).toContain('LocalSink writes one when your app runs without a Mixpanel token');
  });

  it('says when the path cannot be read as a file', async () => {
    const { code, stderr } = await run('report', '.idstitch');
    expect(code).toBe(1);
    expect(stderr).toContain('cannot read');
    expect(stderr).toContain('EISDIR');
  });
});

describe('idstitch usage', () => {
  it('prints help with --help', async () => {
    const { code, stdout } = await run('--help');
    expect(code).toBe(0);
    expect(stdout).toContain('Usage: idstitch <command> [options]');
    expect(stdout).toContain('report [file]');
    expect((await run('report', '-h')).stdout).toContain('--json');
  });

  it.each([
    [[], 'Usage: idstitch'],
    [['deploy'], 'unknown command "deploy"'],
    [['report', '--jsn'], 'unknown option --jsn'],
    [['report', '--mode', 'legacy'], '--mode must be simplified or original, got "legacy"'],
    [['report', 'a.ndjson', 'b.ndjson'], 'report takes one file'],
  ])('exits 2 with a reason for bad usage: %j', async (argv, message) => {
    const { code, stderr } = await run(...argv);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
  });
});

describe('running the source file directly (pnpm idstitch report)', () => {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
  const tsx = join(
    dirname(createRequire(join(root, 'package.json')).resolve('tsx/package.json')),
    'dist',
    'cli.mjs',
  );
  const entry = join(root, 'packages/inspector/src/cli/main.ts');

  it('runs main and sets the exit code', () => {
    const ok = spawnSync(
      process.execPath,
      [tsx, '--conditions=@idstitch/source', entry, 'report', '--json'],
      {
        cwd: dir,
        encoding: 'utf8',
      },
    );
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout).totals.events).toBe(5);

    const missing = spawnSync(
      process.execPath,
      [tsx, '--conditions=@idstitch/source', entry, 'report', 'gone.ndjson'],
      {
        cwd: dir,
        encoding: 'utf8',
      },
    );
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('no events file');
  });
});
