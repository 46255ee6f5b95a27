import type { InspectorSnapshot, TimelineEntry } from '../../src/inspect/snapshot-types.ts';
import { fill, h } from './dom.ts';

/** What the reader narrowed the page to. Empty strings mean "all"; times are ms since the epoch. */
export interface Filters {
  user: string;
  device: string;
  event: string;
  from: number | null;
  to: number | null;
}

export const NO_FILTERS: Filters = { user: '', device: '', event: '', from: null, to: null };

export function isFiltered(filters: Filters): boolean {
  return (
    filters.user !== '' ||
    filters.device !== '' ||
    filters.event !== '' ||
    filters.from !== null ||
    filters.to !== null
  );
}

/** What is left to show once the filters apply. */
export interface Visible {
  clusters: Set<string>;
  /** Message positions of the timeline entries shown. */
  messages: Set<number>;
  /** Positions in `snapshot.findings`. */
  findings: Set<number>;
}

function entryMatches(entry: TimelineEntry, filters: Filters): boolean {
  if (filters.device !== '' && entry.deviceId !== filters.device) return false;
  if (filters.event !== '' && entry.event !== filters.event) return false;
  if (filters.from !== null && (entry.time === null || entry.time < filters.from)) return false;
  if (filters.to !== null && (entry.time === null || entry.time > filters.to)) return false;
  return true;
}

export function applyFilters(snapshot: InspectorSnapshot, filters: Filters): Visible {
  const clusters = new Set<string>();
  const messages = new Set<number>();
  const userCluster = snapshot.clusters.find(
    (c) => c.id === filters.user || c.userIds.includes(filters.user),
  );
  for (const person of snapshot.people) {
    if (filters.user !== '' && person.cluster !== userCluster?.id) continue;
    for (const entry of person.entries) {
      if (!entryMatches(entry, filters)) continue;
      messages.add(entry.message);
      clusters.add(person.cluster);
    }
  }
  if (!isFiltered(filters)) for (const cluster of snapshot.clusters) clusters.add(cluster.id);
  else if (filters.user !== '' && filters.device === '' && filters.event === '' && userCluster) {
    clusters.add(userCluster.id);
  }
  const findings = new Set<number>();
  snapshot.findings.forEach((finding, at) => {
    const shown = finding.evidence.some(
      (e) => messages.has(e.message) || (e.cluster === null && !isFiltered(filters)),
    );
    if (!isFiltered(filters) || shown) findings.add(at);
  });
  return { clusters, messages, findings };
}

function toLocalInput(time: number | null): string {
  if (time === null) return '';
  const date = new Date(time - new Date(time).getTimezoneOffset() * 60_000);
  return date.toISOString().slice(0, 19);
}

function fromLocalInput(value: string): number | null {
  if (value === '') return null;
  const time = new Date(value).getTime();
  return Number.isNaN(time) ? null : time;
}

function options(select: HTMLSelectElement, all: string, values: readonly string[], selected: string): void {
  const list = selected !== '' && !values.includes(selected) ? [...values, selected] : values;
  fill(
    select,
    h('option', { value: '' }, all),
    ...list.map((value) => h('option', { value, selected: value === selected }, value)),
  );
}

/** Keeps the filter form's choices in step with the snapshot, and reports the reader's changes. */
export function bindFilters(form: HTMLFormElement, onChange: (filters: Filters) => void) {
  const field = <T extends HTMLElement>(name: string) => form.elements.namedItem(name) as T;
  const user = field<HTMLSelectElement>('user');
  const device = field<HTMLSelectElement>('device');
  const event = field<HTMLSelectElement>('event');
  const from = field<HTMLInputElement>('from');
  const to = field<HTMLInputElement>('to');
  const read = (): Filters => ({
    user: user.value,
    device: device.value,
    event: event.value,
    from: fromLocalInput(from.value),
    to: fromLocalInput(to.value),
  });
  form.addEventListener('input', () => onChange(read()));
  form.addEventListener('change', () => onChange(read()));
  form.addEventListener('submit', (e) => e.preventDefault());
  form.addEventListener('reset', () => queueMicrotask(() => onChange(read())));
  return {
    /** Refreshes the choices (new users, devices and events arrive live) keeping the current selection. */
    update(snapshot: InspectorSnapshot, filters: Filters): void {
      const users = snapshot.clusters.flatMap((c) => c.userIds).sort();
      const devices = snapshot.nodes
        .filter((n) => n.kind === 'device')
        .map((n) => n.label)
        .sort();
      const events = [...new Set(snapshot.people.flatMap((p) => p.entries.map((e) => e.event)))].sort();
      options(user, 'All users', users, filters.user);
      options(device, 'All devices', devices, filters.device);
      options(event, 'All events', events, filters.event);
      if (fromLocalInput(from.value) !== filters.from) from.value = toLocalInput(filters.from);
      if (fromLocalInput(to.value) !== filters.to) to.value = toLocalInput(filters.to);
    },
    set(next: Partial<Filters>): Filters {
      if (next.user !== undefined) user.value = next.user;
      if (next.device !== undefined) device.value = next.device;
      if (next.event !== undefined) event.value = next.event;
      const filters = read();
      onChange(filters);
      return filters;
    },
  };
}
