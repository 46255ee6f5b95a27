/**
 * Who may write the spool directory. Whatever a segment in it holds is sent to Mixpanel with this app's
 * credentials, a `$merge` (applied permanently) or a profile `$set` included: a directory that another
 * local user can write is a way to forge them. Node-only.
 */
import { constants } from 'node:fs';
import { mkdir, realpath, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

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
 * owned by the effective UID, and neither group- nor world-writable; and unless no other user can swap it
 * for a directory of theirs after this check: none of its ancestors may be writable by others without the
 * sticky bit (`/tmp` is fine). Skipped where there are no POSIX owners and modes (Windows).
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
  await checkAncestors(dir, real);
  return real;
}

/**
 * Whoever may write a directory can rename the entries in it (unless it has the sticky bit), so a writable
 * ancestor lets its writers move the spool away and put a directory of theirs, with their records, in its
 * place while the spool runs. A group-writable ancestor of this process's own group (a user private group,
 * as `umask 002` makes) is let through: the group is this user.
 */
async function checkAncestors(dir: string, real: string): Promise<void> {
  const egid = process.getegid?.();
  for (let parent = dirname(real); ; parent = dirname(parent)) {
    const { mode, gid } = await stat(parent);
    const sticky = (mode & 0o1000) !== 0;
    const others = (mode & 0o002) !== 0;
    const group = (mode & 0o020) !== 0 && gid !== egid;
    if (!sticky && (others || group)) {
      const shown = (mode & 0o7777).toString(8).padStart(3, '0');
      throw new SpoolDirectoryUnsafeError(
        dir,
        `lies in ${parent}, which is writable by ${others ? 'others' : `group ${gid}`} (mode ${shown}) ` +
          'without the sticky bit, so they can swap the spool directory for one of theirs',
        `Run \`chmod go-w ${parent}\` (or \`chmod +t ${parent}\`), or point spool.dir at a directory whose parents only you can write.`,
      );
    }
    if (parent === dirname(parent)) return;
  }
}
