/**
 * Who may write the spool directory. Whatever a segment in it holds is sent to Mixpanel with this app's
 * credentials, a `$merge` (applied permanently) or a profile `$set` included: a directory that another
 * local user can write is a way to forge them. Node-only.
 */
import { constants } from 'node:fs';
import { type FileHandle, mkdir, open, realpath, stat } from 'node:fs/promises';

/** `open` flags that refuse a symlink at the last component (0 where the platform has none: Windows). */
const NOFOLLOW = constants.O_NOFOLLOW ?? 0;
/** Segment files: read back and appended to. */
export const SEGMENT_FLAGS = constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | NOFOLLOW;
/** Ledger files: appended to. */
export const LEDGER_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | NOFOLLOW;
/** Reading a spool file. */
export const READ_FLAGS = constants.O_RDONLY | NOFOLLOW;
/** Mode of the files the spool creates: this user only. */
export const FILE_MODE = 0o600;

/** The spool directory can be written by someone other than this process's user: it is not used. */
export class SpoolDirectoryUnsafeError extends Error {
  override readonly name = 'SpoolDirectoryUnsafeError';
  constructor(
    readonly dir: string,
    why: string,
    fix: string,
  ) {
    super(
      `spool directory ${dir} ${why}: another local user could plant records in it that would be sent to ` +
        `Mixpanel as this app's (a $merge is applied for good). ${fix}`,
    );
  }
}

/**
 * Creates the directory (mode 700) if missing, then refuses it unless only this process's user can write it:
 * owned by the effective UID, and neither group- nor world-writable. Skipped where there are no POSIX
 * owners and modes (Windows). Whoever can write one of its parents can still swap it for a directory of
 * theirs after this check: each spool file is therefore checked again once opened ({@link openOwned}).
 * @returns the directory's real path, with no symlink left in it, which the spool must use from then on: a
 *   symlink on the way could be re-pointed later.
 * @throws SpoolDirectoryUnsafeError naming the directory and the command that fixes it.
 */
export async function prepareDirectory(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const real = await realpath(dir);
  const euid = process.geteuid?.();
  if (euid === undefined || process.platform === 'win32') return real;
  const info = await stat(real);
  if (info.uid !== euid) {
    throw new SpoolDirectoryUnsafeError(
      dir,
      `is owned by uid ${info.uid}, not by this process's user (uid ${euid})`,
      `Run \`chown ${euid} ${dir} && chmod 700 ${dir}\` as its owner, or point spool.dir at a directory of this user.`,
    );
  }
  if ((info.mode & 0o022) !== 0) {
    const mode = (info.mode & 0o7777).toString(8).padStart(3, '0');
    throw new SpoolDirectoryUnsafeError(
      dir,
      `is writable by its group or by others (mode ${mode})`,
      `Run \`chmod 700 ${dir}\`, or point spool.dir at a subdirectory that this process creates (it does so with mode 700).`,
    );
  }
  return real;
}

/** A spool file that this process's user did not make alone: it is not read, nor written to. */
export class SpoolFileUnsafeError extends Error {
  override readonly name = 'SpoolFileUnsafeError';
  readonly code = 'ESPOOLUNSAFE';
  constructor(
    readonly path: string,
    why: string,
  ) {
    super(
      `spool file ${path} ${why}: another local user may have made it (e.g. by swapping the spool directory ` +
        'for one of theirs through a parent they can write); its records are not sent',
    );
  }
}

/**
 * Opens a spool file and checks what was opened, not the path: owned by this process's user, writable by
 * no one else, and with no second name (a hard link). A planted file (in a directory swapped after
 * {@link prepareDirectory}) is refused although its path looks right. Closed and thrown when refused.
 * @throws SpoolFileUnsafeError
 */
export async function openOwned(path: string, flags: number, mode?: number): Promise<FileHandle> {
  const handle = await open(path, flags, mode);
  const euid = process.geteuid?.();
  if (euid === undefined || process.platform === 'win32') return handle;
  try {
    const info = await handle.stat();
    const why =
      info.uid !== euid
        ? `is owned by uid ${info.uid}, not by this process's user (uid ${euid})`
        : (info.mode & 0o022) !== 0
          ? `is writable by its group or by others (mode ${(info.mode & 0o777).toString(8)})`
          : info.nlink > 1
            ? `has ${info.nlink} names (hard links)`
            : undefined;
    if (why !== undefined) throw new SpoolFileUnsafeError(path, why);
    return handle;
  } catch (error) {
    await handle.close().catch(() => {});
    throw error;
  }
}

/** Reads a whole spool file through {@link openOwned}. */
export async function readOwned(path: string): Promise<Buffer> {
  const handle = await openOwned(path, READ_FLAGS);
  try {
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}
