/** Short forms for dense tables; the full value always stays available (title, aria-label). */
export function shortId(id: string | null): string {
  if (id === null || id === '') return '—';
  const bare = id.startsWith('$device:') ? id.slice('$device:'.length) : id;
  const prefix = id.startsWith('$device:') ? '$device:' : '';
  return bare.length > 14 && /^[0-9a-f-]{20,}$/i.test(bare) ? `${prefix}${bare.slice(0, 8)}…` : id;
}

const timeFormat = new Intl.DateTimeFormat(undefined, {
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});

export function formatTime(time: number | null): string {
  return time === null ? '—' : timeFormat.format(new Date(time));
}

export function plural(count: number, noun: string): string {
  if (count === 1) return `${count} ${noun}`;
  return `${count} ${noun.endsWith('y') ? `${noun.slice(0, -1)}ies` : `${noun}s`}`;
}

export function propertyValue(value: unknown): string {
  return typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
}
