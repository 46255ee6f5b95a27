/**
 * `pnpm bench --only instructions` into bench/: the instruction counts are re-run far more often than the timed
 * scenarios (minutes against twenty), so such a run replaces only what it measured in the committed RESULTS.md
 * and results.json — the "0. Instructions per request" section and the instruction targets — and leaves every
 * other section, figure and target of the last full run as it was written (an older generator's output included:
 * nothing of it is re-rendered).
 */

/** A heading line (`## …`) and everything under it, up to the next heading of the same level or the end. */
interface Section {
  start: number;
  end: number;
}

function findSection(lines: readonly string[], heading: RegExp): Section | undefined {
  const start = lines.findIndex((line) => heading.test(line));
  if (start < 0) return undefined;
  let end = start + 1;
  while (end < lines.length && !/^## /.test(lines[end] as string)) end++;
  return { start, end };
}

/**
 * Replaces the section whose heading matches `heading` with `section` (its heading included); when there is none,
 * inserts it before the first heading matching `before`, or at the end.
 */
export function replaceSection(markdown: string, heading: RegExp, section: string, before: RegExp): string {
  const lines = markdown.replace(/\n+$/, '').split('\n');
  const body = [...section.replace(/\n+$/, '').split('\n'), ''];
  const found = findSection(lines, heading);
  if (found) {
    lines.splice(found.start, found.end - found.start, ...body);
  } else {
    const at = lines.findIndex((line) => before.test(line));
    if (at < 0) lines.push('', ...body);
    else lines.splice(at, 0, ...body);
  }
  return `${lines
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}

/** Targets as results.json stores them; only `id` matters here. */
interface HasId {
  id: string;
}

/** Whether a target is one of the instruction scenario's (instructions/report.ts names them so). */
export const isInstructionTarget = (target: HasId): boolean => target.id.startsWith('instructions-');

/**
 * The previous run's targets with its instruction targets replaced by the instruction targets of `fresh` (a run
 * of the instruction scenario alone also lists the other targets, as not run: those are not taken).
 */
export function mergeTargets<T extends HasId>(previous: readonly T[], fresh: readonly T[]): T[] {
  return [...fresh.filter(isInstructionTarget), ...previous.filter((target) => !isInstructionTarget(target))];
}
