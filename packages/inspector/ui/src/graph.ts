import { graphlib, layout } from '@dagrejs/dagre';
import type {
  GraphLink,
  GraphNode,
  InspectorSnapshot,
  SnapshotCluster,
} from '../../src/inspect/snapshot-types.ts';
import { type Child, fill, h, svg } from './dom.ts';
import { plural, shortId } from './format.ts';

export interface GraphActions {
  /** An ID was chosen: narrow the page to it. */
  selectNode(node: GraphNode): void;
  /** A link was chosen: show the event that made it. */
  selectLink(link: GraphLink): void;
}

const NODE_HEIGHT = 34;
const CHAR_WIDTH = 7.4;
const PADDING = 14;
const CLUSTER_TITLE = 18;
const CLUSTER_GAP = 10;

function nodeText(node: GraphNode): string {
  return node.kind === 'device'
    ? shortId(`$device:${node.label}`).slice('$device:'.length)
    : shortId(node.label);
}

function nodeName(node: GraphNode): string {
  const kind = node.kind === 'device' ? 'Device' : node.kind === 'user' ? 'User' : 'ID';
  return `${kind} ${node.label}`;
}

function clusterName(cluster: SnapshotCluster): string {
  const who = cluster.anonymous ? `Anonymous ${shortId(cluster.id)}` : cluster.id;
  return `${who} · ${plural(cluster.ids.length, 'ID')} · ${plural(cluster.eventCount, 'event')}`;
}

function linkName(link: GraphLink, nodes: Map<string, GraphNode>): string {
  const from = nodes.get(link.from);
  const to = nodes.get(link.to);
  const where = link.line === null ? `message ${link.message + 1}` : `line ${link.line}`;
  const verdict =
    link.outcome === 'refused'
      ? `Refused link from ${from ? nodeName(from) : link.from} to ${to ? nodeName(to) : link.to}`
      : `Link from ${from ? nodeName(from) : link.from} to ${to ? nodeName(to) : link.to}`;
  return `${verdict}, made by event ${link.event} (${where}): ${link.explanation}`;
}

function edgeLabel(link: GraphLink): string {
  if (link.outcome === 'refused') return `✕ ${link.event}: ${link.reason?.replaceAll('_', ' ') ?? 'refused'}`;
  return link.outcome === 'unchanged' ? `${link.event} (already joined)` : link.event;
}

function pathOf(points: readonly { x: number; y: number }[]): string {
  return points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
}

/** Lays the clusters out with dagre (devices left, users right) and draws them as accessible SVG. */
export function renderGraph(
  container: HTMLElement,
  snapshot: InspectorSnapshot,
  visible: ReadonlySet<string>,
  selected: string | null,
  actions: GraphActions,
): void {
  const clusters = snapshot.clusters.filter((c) => visible.has(c.id));
  if (clusters.length === 0) {
    fill(container, h('p', { class: 'empty' }, 'No clusters to show.'));
    return;
  }
  const shown = new Set(clusters.map((c) => c.id));
  const nodes = snapshot.nodes.filter((n) => shown.has(n.cluster));
  const byId = new Map(snapshot.nodes.map((n) => [n.id, n]));
  const links = snapshot.links
    .filter((l) => byId.has(l.from) && byId.has(l.to))
    .filter((l) => shown.has(byId.get(l.from)!.cluster) && shown.has(byId.get(l.to)!.cluster));

  const g = new graphlib.Graph({ compound: true, multigraph: true });
  g.setGraph({ rankdir: 'LR', nodesep: 44, ranksep: 80, edgesep: 14, marginx: 12, marginy: 30 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const cluster of clusters) {
    g.setNode(`cluster:${cluster.id}`, {
      label: clusterName(cluster),
      paddingTop: 28,
      paddingBottom: 10,
      paddingLeft: 12,
      paddingRight: 12,
    });
  }
  for (const node of nodes) {
    g.setNode(node.id, {
      width: Math.max(70, nodeText(node).length * CHAR_WIDTH + 2 * PADDING),
      height: NODE_HEIGHT,
    });
    g.setParent(node.id, `cluster:${node.cluster}`);
  }
  for (const link of links) {
    const label = edgeLabel(link);
    g.setEdge(link.from, link.to, { width: label.length * 6.4, height: 18, labelpos: 'c' }, link.id);
  }
  layout(g);
  const size = g.graph();
  // dagre leaves no room for a title above a cluster's nodes: push each cluster (stacked top to bottom) down
  // by the titles above it, including its own.
  const order = [...clusters].sort((a, b) => g.node(`cluster:${a.id}`).y - g.node(`cluster:${b.id}`).y);
  const shift = new Map(
    order.map((cluster, i) => [cluster.id, CLUSTER_TITLE + i * (CLUSTER_TITLE + CLUSTER_GAP)]),
  );
  const shiftOf = (id: string) => shift.get(byId.get(id)?.cluster ?? '') ?? 0;
  const height = Math.ceil((size.height ?? 0) + 24 + clusters.length * (CLUSTER_TITLE + CLUSTER_GAP));

  const drawNode = (node: GraphNode): Child => {
    const placed = g.node(node.id);
    const box = { ...placed, y: placed.y + shiftOf(node.id) };
    const name = `${nodeName(node)}, in the cluster of ${shortId(node.cluster)}`;
    return svg(
      'g',
      {
        class: `node ${node.kind}${selected === node.id ? ' selected' : ''}`,
        'data-id': node.id,
        'data-kind': node.kind,
        'data-cluster': node.cluster,
        tabindex: 0,
        role: 'button',
        'aria-pressed': selected === node.id ? 'true' : 'false',
        'aria-label': name,
        onclick: () => actions.selectNode(node),
        onkeydown: (event: Event) => activate(event, () => actions.selectNode(node)),
      },
      svg('title', {}, name),
      svg('rect', {
        x: box.x - box.width / 2,
        y: box.y - box.height / 2,
        width: box.width,
        height: box.height,
        rx: node.kind === 'user' ? NODE_HEIGHT / 2 : 5,
      }),
      svg('text', { x: box.x, y: box.y + 4.5, 'text-anchor': 'middle' }, nodeText(node)),
    );
  };

  let right = 0;
  const clusterBoxes: Child[] = clusters.map((cluster) => {
    const placed = g.node(`cluster:${cluster.id}`);
    const box = { ...placed, y: placed.y + (shift.get(cluster.id) ?? 0) };
    // dagre leaves no room for a title inside a cluster box; grow the box upwards into the node gap.
    const x = box.x - box.width / 2;
    const y = box.y - box.height / 2 - CLUSTER_TITLE;
    const boxWidth = Math.max(box.width, clusterName(cluster).length * 7 + 24);
    right = Math.max(right, x + boxWidth);
    return svg(
      'g',
      {
        class: `cluster${cluster.anonymous ? ' anonymous' : ''}`,
        'data-cluster': cluster.id,
        role: 'group',
        'aria-label': `Cluster ${clusterName(cluster)}`,
      },
      svg('rect', {
        class: `cluster-box${cluster.anonymous ? ' anonymous' : ''}`,
        x,
        y,
        width: boxWidth,
        height: box.height + CLUSTER_TITLE,
        rx: 10,
      }),
      svg(
        'text',
        { x: x + 10, y: y + 18, class: 'cluster-label', 'aria-hidden': 'true' },
        clusterName(cluster),
      ),
      ...nodes.filter((node) => node.cluster === cluster.id).map(drawNode),
    );
  });

  const edges: Child[] = links.map((link) => {
    const edge = g.edge(link.from, link.to, link.id);
    const [from, to] = [shiftOf(link.from), shiftOf(link.to)];
    const placed: readonly { x: number; y: number }[] = edge.points ?? [];
    const points = placed.map((p, i) => ({
      x: p.x,
      y: p.y + from + ((to - from) * i) / Math.max(1, placed.length - 1),
    }));
    const labelY = (edge.y ?? 0) + (from + to) / 2;
    const name = linkName(link, byId);
    return svg(
      'g',
      {
        class: `edge ${link.outcome}`,
        'data-link': link.id,
        'data-message': link.message,
        'data-from': link.from,
        'data-to': link.to,
        'data-outcome': link.outcome,
        tabindex: 0,
        role: 'button',
        'aria-label': name,
        onclick: () => actions.selectLink(link),
        onkeydown: (event: Event) => activate(event, () => actions.selectLink(link)),
      },
      svg('title', {}, name),
      svg('path', { d: pathOf(points), 'marker-end': `url(#arrow-${link.outcome})` }),
      svg(
        'text',
        { x: edge.x ?? 0, y: labelY + 4, 'text-anchor': 'middle', class: 'edge-label' },
        edgeLabel(link),
      ),
    );
  });

  const width = Math.ceil(Math.max(size.width ?? 0, right) + 24);
  const marker = (id: string) =>
    svg(
      'marker',
      {
        id: `arrow-${id}`,
        viewBox: '0 0 10 10',
        refX: 9,
        refY: 5,
        markerWidth: 7,
        markerHeight: 7,
        orient: 'auto-start-reverse',
        class: `marker ${id}`,
      },
      svg('path', { d: 'M0,0 L10,5 L0,10 z' }),
    );

  fill(
    container,
    svg(
      'svg',
      {
        class: 'graph-svg',
        viewBox: `0 0 ${width} ${height}`,
        width,
        height,
        role: 'group',
        'aria-labelledby': 'graph-heading',
        'aria-describedby': 'graph-hint',
      },
      svg('defs', {}, marker('merged'), marker('unchanged'), marker('refused')),
      ...clusterBoxes,
      ...edges,
    ),
  );
}

function activate(event: Event, action: () => void): void {
  const key = (event as KeyboardEvent).key;
  if (key === 'Enter' || key === ' ') {
    event.preventDefault();
    action();
  }
}
