// Delivery issues: failed, bounced and complained deliveries with their reasons, suppressed
// addresses, and the top bounce reasons by class, recipient domain and provider.
import { api } from '../api.js';
import { h, fill, num, when, section, table, empty, Pager, today, addDays, field, select, widthOf } from '../ui.js';
import { messageTable, showMessage } from './messages.js';

export const title = 'Delivery issues';

const PROBLEMS = ['failed', 'bounced', 'complained'];

export async function render(root, ctx) {
  const p = ctx.params;
  const days = ['7', '30', '90'].includes(p.get('days')) ? p.get('days') : '30';
  const status = p.getAll('status').filter((x) => PROBLEMS.includes(x));
  const shown = status.length ? status : PROBLEMS;
  const reasons = h('div', { 'data-testid': 'bounce-reasons' });
  const list = h('div', { 'data-testid': 'problem-messages' });
  const suppressed = h('div', { 'data-testid': 'suppressed' });
  const daysSelect = select('days', [['7', 'Last 7 days'], ['30', 'Last 30 days'], ['90', 'Last 90 days']], days);
  daysSelect.addEventListener('change', () => ctx.navigate(`/issues?days=${daysSelect.value}${status.map((x) => `&status=${x}`).join('')}`));
  const chips = h('div.chips', { role: 'group', 'aria-label': 'Which problems' }, h('span.muted', {}, 'Show:'), PROBLEMS.map((st) =>
    h('button.chip', { type: 'button', 'aria-pressed': String(shown.includes(st)), 'data-status-chip': st, onclick: () => {
      const next = shown.includes(st) ? shown.filter((x) => x !== st) : [...shown, st];
      ctx.navigate(`/issues?days=${days}${(next.length === PROBLEMS.length ? [] : next).map((x) => `&status=${x}`).join('')}`);
    } }, st)));
  fill(
    root,
    h('h1', {}, 'Delivery issues'),
    h('form.controls', { onsubmit: (e) => e.preventDefault() }, field('Bounce reasons over', daysSelect)),
    h('h2', {}, 'Top bounce and failure reasons'),
    reasons,
    h('h2', {}, 'Failed, bounced and complained deliveries'),
    chips,
    list,
    h('h2', {}, 'Suppressed addresses'),
    suppressed,
  );
  const to = today('UTC');
  const from = addDays(to, -Number(days) + 1);
  const pager = new Pager(() => loadList());
  const loadList = () =>
    section(list, 'problem deliveries', () => api('/v1/messages', { params: { status: shown, page_size: 50, page_token: pager.token } }), (page) =>
      page.messages.length ? [messageTable('Newest first; the reason is the latest error the provider gave', page.messages, (id) => showMessage(id)), pager.controls(page.next_page_token)] : empty('No failed, bounced or complained deliveries. 🎉'),
    );
  await Promise.all([
    section(reasons, 'bounce reasons', () => api('/v1/stats/bounces', { params: { from, to } }), (b) => showReasons(b)),
    loadList(),
    section(suppressed, 'suppressions', () => api('/v1/suppressions', { params: { page_size: 20 } }), (page) =>
      page.suppressions.length
        ? [
            table('The first 20 by address', [
              { label: 'Address', cell: (x) => h('a', { href: `/suppressions?address=${encodeURIComponent(x.address)}`, 'data-nav': true }, x.address) },
              { label: 'Reason', cell: (x) => x.reason },
              { label: 'Scope', cell: (x) => x.scope },
              { label: 'Since (UTC)', cell: (x) => when(x.occurred_at) },
            ], page.suppressions),
            h('p', {}, h('a', { href: '/suppressions', 'data-nav': true }, 'All suppressions →')),
          ]
        : empty('No suppressed addresses.')),
  ]);
}

function showReasons(b) {
  if (!b.total) return empty(`No bounces or failures between ${b.from} and ${b.to}.`);
  const top = Math.max(...b.classes.map((c) => c.count), 1);
  const rows = (caption, key, list) =>
    list.length
      ? table(caption, [
          { label: key === 'domain' ? 'Recipient domain' : 'Provider', cell: (r) => r[key] },
          { label: 'Class', cell: (r) => r.class },
          { label: 'Reason', cell: (r) => r.reason || '–' },
          { label: 'Count', num: true, cell: (r) => num(r.count) },
        ], list, { testid: `bounces-by-${key}` })
      : empty(`No reasons by ${key}.`);
  return [
    h('p', {}, `${num(b.total)} bounces and failures between ${b.from} and ${b.to}, by class:`),
    h('div.bars', { 'data-testid': 'bounce-classes' }, b.classes.map((c) => [h('span', {}, c.class.replace('_', ' ')), widthOf(h('span.bar', { 'aria-hidden': 'true' }), c.count / top), h('span.num', { 'data-class': c.class }, num(c.count))])),
    h('div.grid2', {}, rows('Top reasons by recipient domain', 'domain', b.by_domain), rows('Top reasons by provider', 'provider', b.by_provider)),
  ];
}
