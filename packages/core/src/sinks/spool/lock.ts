import { readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

/** Another live process holds the spool directory. */
export class SpoolLockedError extends Error {
  override readonly name = 'SpoolLockedError';
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(`spool directory ${dir} is in use by process ${pid}`);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `<dir>/LOCK`, created exclusively with this process's PID and host. A lock left by a process
 * that no longer runs (on this host) is stale and taken over. Returns the release function.
 */
export async function lockDirectory(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, 'LOCK');
  const mine = `${process.pid} ${hostname()}\n`;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      await writeFile(path, mine, { flag: 'wx' });
      return async () => {
        // Only remove it while it is still ours.
        const text = await readFile(path, 'utf8').catch(() => '');
        if (text === mine) await rm(path, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const text = await readFile(path, 'utf8').catch(() => '');
    const [pidText, host] = text.trim().split(' ');
    const pid = Number(pidText);
    if (Number.isInteger(pid) && pid > 0 && (host === undefined || host === hostname()) && alive(pid)) {
      throw new SpoolLockedError(dir, pid);
    }
    if (Number.isInteger(pid) && pid > 0 && host !== undefined && host !== hostname()) {
      // Another machine on a shared disk: its PID cannot be checked from here.
      throw new SpoolLockedError(dir, pid);
    }
    // Stale: the process is gone (or the file is empty from a crash during creation).
    await rm(path, { force: true });
  }
  throw new Error(`could not take the lock ${path}`);
}
