/** Progress lines on stderr, so that stdout stays free for a summary. */
export function log(line: string): void {
  const time = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[bench ${time}] ${line}\n`);
}
