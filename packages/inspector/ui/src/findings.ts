import type { InspectorSnapshot } from '../../src/inspect/snapshot-types.ts';
import { fill, h } from './dom.ts';

export interface FindingActions {
  /** Evidence was chosen: show that event in its timeline. */
  showMessage(message: number): void;
}

export function renderFindings(
  container: HTMLElement,
  snapshot: InspectorSnapshot,
  shown: ReadonlySet<number>,
  actions: FindingActions,
): void {
  const items = snapshot.findings.flatMap((finding, index) => {
    if (!shown.has(index)) return [];
    const headingId = `finding-${index}`;
    return [
      h(
        'li',
        {
          class: `finding ${finding.severity}`,
          'data-kind': finding.kind,
          'aria-labelledby': headingId,
          tabindex: -1,
          id: `finding-item-${index}`,
        },
        h(
          'h3',
          { id: headingId },
          h(
            'span',
            { class: `badge ${finding.severity}` },
            finding.severity === 'error' ? 'Error' : 'Warning',
          ),
          ' ',
          h('span', { class: 'finding-title' }, finding.title),
          ' ',
          h('code', { class: 'muted' }, finding.kind),
        ),
        h('p', {}, finding.detail),
        h(
          'ul',
          { class: 'evidence', 'aria-label': 'Events it points at' },
          ...finding.evidence.map((evidence) =>
            h(
              'li',
              {},
              evidence.cluster === null
                ? h('span', {}, evidence.description)
                : h(
                    'button',
                    {
                      type: 'button',
                      class: 'evidence-link',
                      onclick: () => actions.showMessage(evidence.message),
                    },
                    evidence.line === null ? `Message ${evidence.message + 1}` : `Line ${evidence.line}`,
                  ),
              evidence.cluster === null
                ? null
                : h('span', { class: 'evidence-text' }, ` ${evidence.description}`),
            ),
          ),
        ),
      ),
    ];
  });
  fill(
    container,
    items.length > 0
      ? h('ol', { class: 'findings' }, ...items)
      : h(
          'p',
          { class: 'empty ok' },
          snapshot.findings.length === 0
            ? 'No findings: identity looks right.'
            : 'No findings match the filters.',
        ),
  );
}
