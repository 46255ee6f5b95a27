import './styles.css';
import type { InspectorSnapshot } from '../../src/inspect/snapshot-types.ts';
import { fill, h } from './dom.ts';
import { applyFilters, bindFilters, type Filters, NO_FILTERS } from './filters.ts';
import { renderFindings } from './findings.ts';
import { formatTime } from './format.ts';
import { renderGraph } from './graph.ts';
import { connect } from './live.ts';
import { renderTimelines } from './timeline.ts';

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

let snapshot: InspectorSnapshot | null = null;
let filters: Filters = NO_FILTERS;
let selectedNode: string | null = null;
let connection: 'connecting' | 'live' | 'reconnecting' = 'connecting';

const form = byId<HTMLFormElement>('filters');
const filterForm = bindFilters(form, (next) => {
  filters = next;
  if (next.user === '' && next.device === '') selectedNode = null;
  render();
});

/** A key for the focused element, so focus survives a re-render (live updates replace the DOM). */
function focusKey(): string | null {
  const active = document.activeElement;
  if (!(active instanceof Element)) return null;
  for (const name of ['data-id', 'data-link', 'id']) {
    const value = active.getAttribute(name);
    if (value) return `[${name}="${CSS.escape(value)}"]`;
  }
  return null;
}

function restoreFocus(key: string | null): void {
  if (key === null || document.activeElement !== document.body) return;
  const target = document.querySelector<HTMLElement | SVGElement>(key);
  target?.focus({ preventScroll: true });
}

function focusMessage(message: number): void {
  const target = document.getElementById(`message-${message}`);
  if (target === null) return;
  for (const row of document.querySelectorAll('tr.highlight')) row.classList.remove('highlight');
  target.classList.add('highlight');
  target.scrollIntoView({ block: 'center' });
  target.focus({ preventScroll: true });
}

function renderHeader(current: InspectorSnapshot): void {
  byId('source').textContent = current.source;
  byId('mode').textContent =
    `${current.mode === 'simplified' ? 'Simplified' : 'Original'} ID Merge${current.modeInferred ? ' (guessed)' : ''}`;
  const t = current.totals;
  fill(
    byId('totals'),
    ...(
      [
        ['Events', t.events],
        ['Clusters', t.clusters],
        ['Users', t.identifiedUsers],
        ['Findings', t.findings],
        ...(t.pending > 0 ? ([['Pending delivery', t.pending]] as const) : []),
      ] as const
    ).flatMap(([label, value]) => [
      h('div', { class: 'total' }, h('dt', {}, label), h('dd', {}, String(value))),
    ]),
  );
  const problem = byId('problem');
  problem.hidden = current.problem === null && t.unreadableLines === 0;
  problem.textContent =
    current.problem ??
    (t.unreadableLines > 0 ? `${t.unreadableLines} lines of the file hold no message and were skipped.` : '');
  const notices = byId('notices');
  notices.hidden = current.notices.length === 0;
  fill(notices, ...current.notices.map((notice) => h('li', {}, notice)));
}

function renderStatus(): void {
  const status = byId('status');
  status.dataset.state = connection;
  status.textContent =
    connection === 'live'
      ? `Live · revision ${snapshot?.revision ?? 0} · updated ${formatTime(snapshot?.builtAt ?? null)}`
      : connection === 'reconnecting'
        ? 'Connection lost; reconnecting…'
        : 'Connecting…';
}

function render(): void {
  renderStatus();
  if (snapshot === null) return;
  const current = snapshot;
  const key = focusKey();
  renderHeader(current);
  filterForm.update(current, filters);
  const visible = applyFilters(current, filters);
  renderGraph(byId('graph'), current, visible.clusters, selectedNode, {
    selectNode(node) {
      selectedNode = selectedNode === node.id ? null : node.id;
      const user = current.clusters.find((c) => c.id === node.cluster)?.userIds[0] ?? '';
      filters = filterForm.set(
        selectedNode === null
          ? { user: '', device: '' }
          : node.kind === 'device'
            ? { device: node.label, user: '' }
            : { user: user || node.label, device: '' },
      );
    },
    selectLink(link) {
      focusMessage(link.message);
    },
  });
  renderFindings(byId('findings'), current, visible.findings, { showMessage: focusMessage });
  renderTimelines(byId('people'), current, visible.messages, {
    showFinding(index) {
      const item = document.getElementById(`finding-item-${index}`);
      item?.scrollIntoView({ block: 'center' });
      item?.focus({ preventScroll: true });
    },
  });
  restoreFocus(key);
}

connect({
  snapshot(next) {
    snapshot = next;
    connection = 'live';
    render();
  },
  status(state) {
    connection = state;
    renderStatus();
  },
});
