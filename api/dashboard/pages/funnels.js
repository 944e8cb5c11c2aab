// Broadcasts, sequences and templates with their funnels; one broadcast's report (deliveries
// by status, with a status filter).
import { api, seg } from '../api.js';
import { h, fill, num, when, money, section, table, empty, Pager, badge, widthOf } from '../ui.js';
import { messageTable, showMessage, STATUSES } from './messages.js';

export const title = 'Broadcasts & funnels';

const KINDS = [['broadcasts', 'Broadcasts'], ['sequences', 'Sequences'], ['templates', 'Templates']];

function bars(f) {
  const top = Math.max(f.sent, f.deliveries, 1);
  const steps = [['sent', f.sent], ['delivered', f.delivered], ['opened', f.opened.unique], ['clicked', f.clicked.unique]];
  return h('div.funnel', { 'aria-hidden': 'true' }, steps.map(([k, v]) => widthOf(h('span', { title: `${k}: ${v}` }), v / top)));
}

export async function render(root, ctx) {
  const p = ctx.params;
  const kind = KINDS.some((k) => k[0] === p.get('kind')) ? p.get('kind') : 'broadcasts';
  const report = p.get('report') || '';
  const tabs = h('nav.chips', { 'aria-label': 'Kind' }, KINDS.map(([k, label]) =>
    h('a.chip', { href: `/funnels?kind=${k}`, 'data-nav': true, 'aria-current': k === kind && !report ? 'page' : null }, label)));
  if (report) return renderReport(root, ctx, report, tabs);

  const list = h('div', { 'data-testid': 'funnels' });
  fill(root, h('h1', {}, 'Broadcasts, sequences and templates'), tabs, list);
  const pager = new Pager(() => load());
  const load = () =>
    section(list, kind, () => api(`/v1/${kind}`, { params: { page_size: 50, page_token: pager.token } }), (page) =>
      page.items.length
        ? [
            table(
              `${KINDS.find((k) => k[0] === kind)[1]} with their funnels (people only; unique deliveries)`,
              [
                { label: 'Id', cell: (i) => (kind === 'broadcasts' ? h('a', { href: `/funnels?kind=broadcasts&report=${encodeURIComponent(i.id)}`, 'data-nav': true }, i.id) : i.id) },
                { label: 'Funnel', cell: (i) => bars(i.funnel) },
                { label: 'Deliveries', num: true, cell: (i) => num(i.funnel.deliveries) },
                { label: 'Sent', num: true, cell: (i) => num(i.funnel.sent) },
                { label: 'Delivered', num: true, cell: (i) => num(i.funnel.delivered) },
                { label: 'Opened', num: true, cell: (i) => num(i.funnel.opened.unique) },
                { label: 'Clicked', num: true, cell: (i) => num(i.funnel.clicked.unique) },
                { label: 'Hard bounces', num: true, cell: (i) => num(i.funnel.hard_bounces) },
                { label: 'Complaints', num: true, cell: (i) => num(i.funnel.complaints) },
                { label: 'Unsubscribes', num: true, cell: (i) => num(i.funnel.unsubscribes) },
                { label: 'Cost', cell: (i) => money(i.funnel.cost) },
                { label: 'Last activity (UTC)', cell: (i) => when(i.last_activity_at) },
              ],
              page.items,
              { rowAttrs: (i) => ({ 'data-id': i.id, 'data-deliveries': i.funnel.deliveries }), testid: 'funnel-table' },
            ),
            pager.controls(page.next_page_token),
          ]
        : empty(`No ${kind} yet.`, 'Deliveries are grouped here by the broadcast, sequence or template their send record names.'),
    );
  await load();
}

async function renderReport(root, ctx, id, tabs) {
  const p = ctx.params;
  const status = p.getAll('status').filter((x) => STATUSES.includes(x));
  const counts = h('div', { 'data-testid': 'report-counts' });
  const list = h('div', { 'data-testid': 'report' });
  fill(root, h('h1', {}, `Broadcast ${id}`), tabs, h('p', {}, h('a', { href: '/funnels?kind=broadcasts', 'data-nav': true }, '← All broadcasts')), counts, list);
  const setStatus = (st) => ctx.navigate(`/funnels?kind=broadcasts&report=${encodeURIComponent(id)}${st.map((x) => `&status=${x}`).join('')}`);
  const pager = new Pager(() => load());
  const load = () =>
    section(list, 'the report', () => api(`/v1/broadcasts/${seg(id)}/report`, { params: { status, page_size: 50, page_token: pager.token } }), (r) => {
      const total = Object.values(r.counts_by_status).reduce((a, b) => a + b, 0);
      fill(
        counts,
        h('div.chips', { role: 'group', 'aria-label': 'Filter by status' },
          h('span.muted', {}, `${num(total)} deliveries by status:`),
          Object.entries(r.counts_by_status).map(([st, n]) =>
            h('button.chip', { type: 'button', 'aria-pressed': String(status.includes(st)), 'data-status-chip': st, onclick: () => setStatus(status.includes(st) ? status.filter((x) => x !== st) : [...status, st]) }, badge(st), ` ${num(n)}`)),
          status.length ? h('button.secondary', { type: 'button', onclick: () => setStatus([]) }, 'All statuses') : null),
      );
      return r.messages.length ? [messageTable(`Deliveries of ${id}${status.length ? ` with status ${status.join(', ')}` : ''}`, r.messages, (mid) => showMessage(mid)), pager.controls(r.next_page_token)] : empty('No deliveries match.');
    });
  await load();
}
