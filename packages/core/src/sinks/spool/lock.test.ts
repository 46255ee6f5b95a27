import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LOCK_REFRESH_MS, LOCK_STALE_MS, lockDirectory, SpoolLockedError } from './lock.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'idstitch-lock-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  vi.useRealTimers();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Sets the LOCK's mtime `ageMs` in the past. */
function age(dir: string, ageMs: number): void {
  const then = new Date(Date.now() - ageMs);
  utimesSync(join(dir, 'LOCK'), then, then);
}

/** What this process writes after its host name: its start time, where known. */
const mineStart = (): string => {
  const start = startOf(process.pid);
  return start === undefined ? '' : ` ${start}`;
};

describe('the spool LOCK', () => {
  it('takes over a LOCK naming our own PID that this process does not hold (a restarted container’s PID 1)', async () => {
    const dir = tempDir();
    // What the previous incarnation left: same PID (as PID 1 is after every container restart), same host.
    writeFileSync(join(dir, 'LOCK'), `${process.pid} ${hostname()}\n`);
    const release = await lockDirectory(dir);
    expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toBe(`${process.pid} ${hostname()}${mineStart()}\n`);
    await release();
  });

  it('refuses a directory this process holds, also under another spelling of its path, until released', async () => {
    const dir = tempDir();
    const release = await lockDirectory(dir);
    const slot = (globalThis as Record<symbol, Set<string> | undefined>)[
      Symbol.for('@idstitch/core:spool-locks')
    ];
    expect(slot?.size).toBeGreaterThan(0);
    await expect(lockDirectory(dir)).rejects.toThrow(`in use by process ${process.pid}`);
    const alias = join(tempDir(), 'alias');
    symlinkSync(dir, alias);
    await expect(lockDirectory(alias)).rejects.toBeInstanceOf(SpoolLockedError);
    // Even an old mtime does not make our own held lock stale.
    age(dir, LOCK_STALE_MS + 1000);
    await expect(lockDirectory(dir)).rejects.toBeInstanceOf(SpoolLockedError);
    await release();
    await (await lockDirectory(dir))();
  });

  it('refuses two opens started in the same tick by one process', async () => {
    const dir = tempDir();
    const results = await Promise.allSettled([lockDirectory(dir), lockDirectory(dir)]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    for (const result of results) if (result.status === 'fulfilled') await result.value();
  });

  it('refuses a live process of this host (our parent), takes over a dead one', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'LOCK'), `${process.ppid} ${hostname()}\n`);
    await expect(lockDirectory(dir)).rejects.toThrow(`in use by process ${process.ppid}`);
    writeFileSync(join(dir, 'LOCK'), `2147483646 ${hostname()}\n`);
    await (await lockDirectory(dir))();
  });

  it('refuses a fresh LOCK of another host, takes it over once it went LOCK_STALE_MS without a refresh', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'LOCK'), '4242 other-host.example\n');
    const refused = await lockDirectory(dir).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(SpoolLockedError);
    expect((refused as Error).message).toContain('in use by process 4242 on host other-host.example');
    age(dir, LOCK_STALE_MS - 5000);
    await expect(lockDirectory(dir)).rejects.toBeInstanceOf(SpoolLockedError);
    age(dir, LOCK_STALE_MS + 1000);
    const release = await lockDirectory(dir);
    expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toBe(`${process.pid} ${hostname()}${mineStart()}\n`);
    await release();
  });

  it('the holder refreshes its LOCK, so other hosts do not take it for stale', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const dir = tempDir();
    const release = await lockDirectory(dir);
    age(dir, LOCK_STALE_MS + 1000);
    const old = statSync(join(dir, 'LOCK')).mtimeMs;
    vi.advanceTimersByTime(LOCK_REFRESH_MS);
    await vi.waitFor(() => expect(statSync(join(dir, 'LOCK')).mtimeMs).toBeGreaterThan(old + LOCK_STALE_MS));
    await release();
  });
});

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); `undefined` off Linux. */
function startOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

describe.runIf(startOf(process.pid) !== undefined)(
  'the spool LOCK on Linux, where a process’s start time is known',
  () => {
    it('refuses a live holder of this host whose LOCK went unrefreshed (event loop blocked > LOCK_STALE_MS, clock jump)', async () => {
      const dir = tempDir();
      // Our parent stands for a holder that is alive but did not touch its LOCK for over a minute: a long
      // synchronous task, a debugger pause, or the wall clock jumping forward. Two writers would then append
      // to the same segments and settle each other's acks.
      writeFileSync(join(dir, 'LOCK'), `${process.ppid} ${hostname()} ${startOf(process.ppid)}\n`);
      age(dir, LOCK_STALE_MS + 60_000);
      await expect(lockDirectory(dir)).rejects.toThrow(`in use by process ${process.ppid}`);
    });

    it('leaves a LOCK whose live PID has another start time to the age rule (a reused PID, or another PID namespace)', async () => {
      const dir = tempDir();
      writeFileSync(join(dir, 'LOCK'), `${process.ppid} ${hostname()} 1${startOf(process.ppid)}\n`);
      await expect(lockDirectory(dir)).rejects.toBeInstanceOf(SpoolLockedError);
      age(dir, LOCK_STALE_MS + 1000);
      const release = await lockDirectory(dir);
      expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toBe(
        `${process.pid} ${hostname()} ${startOf(process.pid)}\n`,
      );
      await release();
    });
  },
);

describe('the spool LOCK, once taken over', () => {
  it('tells its holder at the next refresh, and stops touching the new holder’s LOCK', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const dir = tempDir();
    let lost = 0;
    const release = await lockDirectory(dir, () => {
      lost += 1;
    });
    // Another host took it over while this holder's event loop was blocked past LOCK_STALE_MS.
    const theirs = '4242 other-host.example\n';
    rmSync(join(dir, 'LOCK'));
    writeFileSync(join(dir, 'LOCK'), theirs);
    age(dir, 5000);
    const before = statSync(join(dir, 'LOCK')).mtimeMs;
    vi.advanceTimersByTime(LOCK_REFRESH_MS);
    await vi.waitFor(() => expect(lost).toBe(1));
    vi.advanceTimersByTime(3 * LOCK_REFRESH_MS);
    await new Promise((done) => setTimeout(done, 20));
    expect(lost).toBe(1);
    expect(statSync(join(dir, 'LOCK')).mtimeMs).toBe(before);
    await release();
    expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toBe(theirs);
  });
});
