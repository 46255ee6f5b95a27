/**
 * The spool directory's `LOCK`: one process at a time writes a spool. Node-only.
 *
 * A `LOCK` holds `<pid> <hostname> [<start>]`, `<start>` being the holder's start time where the system
 * tells it (Linux: field 22 of `/proc/<pid>/stat`). Whether it is still held is decided, in this order, by:
 * 1. this process's registry of the locks it holds (a `Symbol.for` global slot, so that ESM and CJS copies
 *    of the core share it): a `LOCK` naming our own PID that we do not hold was left by an earlier process
 *    that had the same PID, as a restarted container's PID 1 does, and is stale;
 * 2. on this host, whether the PID still runs; when it does and has the start time the `LOCK` names, it is
 *    the holder itself, live whatever the `LOCK`'s age: a holder whose event loop was blocked past
 *    {@link LOCK_STALE_MS}, or a wall clock that jumped forward, must not let a second process write the
 *    same segments;
 * 3. otherwise (another host on a shared disk, or no start times) its age: the holder touches the `LOCK`
 *    (mtime) every {@link LOCK_REFRESH_MS}; one untouched for {@link LOCK_STALE_MS} is stale.
 */
import { readFileSync } from 'node:fs';
import { lstat, readFile, realpath, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { READ_FLAGS } from './directory.js';

/** How often the holder touches its `LOCK` to show that it is alive. */
export const LOCK_REFRESH_MS = 10_000;

/**
 * A `LOCK` untouched for this long is stale and taken over, even one written on another host. Six refresh
 * periods, so that a holder whose event loop is busy for a while does not lose its lock. Hosts sharing a
 * spool directory need clocks within a few seconds of each other (the age is `now - mtime`).
 */
export const LOCK_STALE_MS = 60_000;

/** Another live process holds the spool directory. */
export class SpoolLockedError extends Error {
  override readonly name = 'SpoolLockedError';
  constructor(
    readonly dir: string,
    readonly pid: number,
    readonly host?: string,
    ageMs?: number,
  ) {
    super(
      `spool directory ${dir} is in use by process ${pid}` +
        (host === undefined
          ? ''
          : ` on host ${host} (its LOCK was refreshed ${Math.round((ageMs ?? 0) / 1000)} s ago; it is taken over ` +
            `once it goes ${LOCK_STALE_MS / 1000} s without a refresh)`),
    );
  }
}

const HELD = Symbol.for('@idstitch/core:spool-locks');

/** Real paths of the `LOCK`s this process holds, shared by every copy of the core it loaded. */
function held(): Set<string> {
  const slots = globalThis as { [HELD]?: Set<string> };
  slots[HELD] ??= new Set<string>();
  return slots[HELD];
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
 * When process `pid` started (clock ticks since boot), to tell it from a later process with the same PID;
 * `undefined` where unknown (no `/proc`: macOS, Windows; or the process is gone).
 */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may itself hold spaces and parentheses.
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return start !== undefined && /^\d+$/.test(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

interface Holder {
  pid: number;
  host: string | undefined;
  start: string | undefined;
  ageMs: number;
}

/** Who the `LOCK` names and how long ago it was touched; `undefined` when it is gone meanwhile. */
async function readHolder(path: string): Promise<Holder | undefined> {
  try {
    const text = await readFile(path, { encoding: 'utf8', flag: READ_FLAGS });
    const { mtimeMs } = await lstat(path);
    const [pidText, host, start] = text.trim().split(' ');
    return {
      pid: Number(pidText),
      host: host || undefined,
      start: start || undefined,
      ageMs: Date.now() - mtimeMs,
    };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Whether `holder` may still be writing the spool (see the module comment for the order of the rules). */
function live(holder: Holder): boolean {
  const { pid, host, start, ageMs } = holder;
  // Empty or garbled: the creator crashed between creating the file and writing it.
  if (!Number.isInteger(pid) || pid <= 0) return false;
  // Another machine on a shared disk: its PID cannot be checked from here; its refreshes can.
  if (host !== undefined && host !== hostname()) return ageMs <= LOCK_STALE_MS;
  // Ours, but not in our registry: an earlier process with our PID (a restarted container's PID 1).
  if (pid === process.pid) return false;
  if (!alive(pid)) return false;
  // The very process that wrote it: live, whatever the age (see the module comment). Another start time
  // is most likely a reused PID, but could be a process of another PID namespace sharing our host name:
  // left to the age rule, as when start times are unknown.
  if (start !== undefined && processStart(pid) === start) return true;
  return ageMs <= LOCK_STALE_MS;
}

/**
 * Takes `<dir>/LOCK`, created exclusively (mode 600) with this process's PID and host, and keeps it fresh
 * while held (an unref'd timer). A stale lock is taken over. Returns the release function.
 *
 * Each refresh first reads the `LOCK` back: when it no longer names this process (another host took it
 * over after this one went {@link LOCK_STALE_MS} without a refresh: an event loop blocked that long, a
 * clock jump, a paused VM), `onLost` is called once and the timer stops, so that the holder stops writing
 * a directory that is no longer its own and does not keep the new holder's `LOCK` looking fresh.
 * @throws SpoolLockedError while another live process (or this one) holds the directory.
 */
export async function lockDirectory(dir: string, onLost?: () => void): Promise<() => Promise<void>> {
  const path = join(dir, 'LOCK');
  // The real path: two spellings of one directory (a symlink) must not both count as free.
  const key = join(await realpath(dir), 'LOCK');
  const locks = held();
  if (locks.has(key)) throw new SpoolLockedError(dir, process.pid);
  // Reserved before the first await on the file: a second open of this directory by this process, even one
  // started in the same tick, finds it in the registry instead of taking a LOCK naming our PID for stale.
  locks.add(key);
  const start = processStart(process.pid);
  const mine = `${process.pid} ${hostname()}${start === undefined ? '' : ` ${start}`}\n`;
  try {
    for (let attempt = 0; attempt < 3; attempt += 1) {
      try {
        // `wx` is O_CREAT | O_EXCL: it never follows a symlink planted at the path.
        await writeFile(path, mine, { flag: 'wx', mode: 0o600 });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const holder = await readHolder(path);
        if (holder !== undefined && live(holder)) {
          const foreign = holder.host !== undefined && holder.host !== hostname();
          throw new SpoolLockedError(dir, holder.pid, foreign ? holder.host : undefined, holder.ageMs);
        }
        await rm(path, { force: true });
        continue;
      }
      let lost = false;
      const timer = setInterval(() => {
        readFile(path, { encoding: 'utf8', flag: READ_FLAGS })
          .catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? '' : mine))
          .then((text) => {
            if (lost) return;
            if (text !== mine) {
              lost = true;
              clearInterval(timer);
              onLost?.();
              return;
            }
            const now = new Date();
            return utimes(path, now, now);
          })
          .catch(() => {});
      }, LOCK_REFRESH_MS);
      timer.unref();
      return async () => {
        clearInterval(timer);
        // Only remove it while it is still ours.
        const text = await readFile(path, { encoding: 'utf8', flag: READ_FLAGS }).catch(() => '');
        if (text === mine) await rm(path, { force: true });
        locks.delete(key);
      };
    }
  } catch (error) {
    locks.delete(key);
    throw error;
  }
  locks.delete(key);
  throw new Error(`could not take the lock ${path}`);
}
