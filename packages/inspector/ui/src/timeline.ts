import type { InspectorSnapshot, PersonTimeline, TimelineEntry } from '../../src/inspect/snapshot-types.ts';
import { type Child, fill, h } from './dom.ts';
import { formatTime, plural, propertyValue, shortId } from './format.ts';

export interface TimelineActions {
  /** A finding marker was chosen: show that finding. */
  showFinding(index: number): void;
}

function idCell(id: string | null): HTMLTableCellElement {
  return h('td', { class: 'id', title: id ?? undefined }, h('code', {}, shortId(id)));
}

function resolvedCell(entry: TimelineEntry): HTMLTableCellElement {
  const changed = entry.resolved !== entry.distinctId;
  return h(
    'td',
    {
      class: `id resolved${changed ? ' changed' : ''}`,
      title: changed ? `${entry.distinctId} ⇒ ${entry.resolved}` : entry.resolved,
    },
    changed ? h('code', {}, shortId(entry.distinctId)) : null,
    changed ? h('span', { class: 'arrow', 'aria-label': 'resolves to' }, ' ⇒ ') : null,
    h('code', {}, shortId(entry.resolved)),
    entry.retroactive ? h('span', { class: 'badge retro' }, 'retroactive') : null,
  );
}

function properties(entry: TimelineEntry): Child {
  const keys = Object.keys(entry.properties).sort();
  if (keys.length === 0) return h('span', { class: 'muted' }, '—');
  return h(
    'details',
    {},
    h('summary', {}, plural(keys.length, 'property')),
    h(
      'dl',
      { class: 'props' },
      ...keys.flatMap((key) => [h('dt', {}, key), h('dd', {}, propertyValue(entry.properties[key]))]),
    ),
  );
}

function row(entry: TimelineEntry, number: number, actions: TimelineActions): HTMLTableRowElement {
  const sentDiffers = entry.distinctIdSent !== null && entry.distinctIdSent !== entry.distinctId;
  return h(
    'tr',
    {
      id: `message-${entry.message}`,
      tabindex: -1,
      class: [
        entry.retroactive ? 'retroactive' : '',
        entry.findings.length > 0 ? 'flagged' : '',
        entry.pending === null ? '' : 'pending',
      ]
        .join(' ')
        .trim(),
      'data-message': entry.message,
      'data-event': entry.event,
    },
    h('td', { class: 'num' }, String(number)),
    h('td', { class: 'time' }, formatTime(entry.time)),
    h('th', { scope: 'row', class: 'event' }, entry.event),
    idCell(entry.deviceId),
    idCell(entry.userId),
    h(
      'td',
      { class: `id${sentDiffers ? ' differs' : ''}`, title: entry.distinctIdSent ?? undefined },
      h('code', {}, shortId(entry.distinctIdSent)),
    ),
    resolvedCell(entry),
    h(
      'td',
      { class: 'notes' },
      entry.pending === null
        ? null
        : h('span', { class: 'badge pending', title: entry.pending }, 'pending delivery'),
      ...entry.notes.map((note) => h('span', { class: 'note' }, note)),
      ...entry.findings.map((index) =>
        h(
          'button',
          { type: 'button', class: 'finding-link', onclick: () => actions.showFinding(index) },
          `QA finding ${index + 1}`,
        ),
      ),
    ),
    h('td', { class: 'properties' }, properties(entry)),
  );
}

function personTable(
  person: PersonTimeline,
  shown: ReadonlySet<number>,
  actions: TimelineActions,
): HTMLElement | null {
  const entries = person.entries.filter((e) => shown.has(e.message));
  if (entries.length === 0) return null;
  const headingId = `person-${person.cluster.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const title = person.anonymous ? `Anonymous visitor ${shortId(person.cluster)}` : `User ${person.cluster}`;
  return h(
    'section',
    { class: 'person', 'aria-labelledby': headingId, 'data-cluster': person.cluster },
    h(
      'h3',
      { id: headingId },
      title,
      ' ',
      h(
        'span',
        { class: 'muted' },
        `· ${plural(person.ids.length, 'ID')} · ${plural(entries.length, 'event')}`,
      ),
    ),
    h(
      'div',
      { class: 'table-scroll', tabindex: 0, role: 'region', 'aria-labelledby': headingId },
      h(
        'table',
        {},
        h('caption', { class: 'visually-hidden' }, `Events of ${title}`),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...[
              '#',
              'Time',
              'Event',
              '$device_id',
              '$user_id',
              'distinct_id sent',
              'distinct_id (set by Mixpanel)',
              'Notes',
              'Properties',
            ].map((label) => h('th', { scope: 'col' }, label)),
          ),
        ),
        h('tbody', {}, ...entries.map((entry, i) => row(entry, i + 1, actions))),
      ),
    ),
  );
}

export function renderTimelines(
  container: HTMLElement,
  snapshot: InspectorSnapshot,
  shown: ReadonlySet<number>,
  actions: TimelineActions,
): void {
  const sections = snapshot.people
    .map((person) => personTable(person, shown, actions))
    .filter((s) => s !== null);
  fill(container, ...(sections.length > 0 ? sections : [h('p', { class: 'empty' }, 'No events to show.')]));
}
