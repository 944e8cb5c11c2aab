// Messages: one row per delivery with its latest status, filter chips kept in the URL, keyset
// paging, and a drawer with one delivery's whole chronology.
import { api, seg } from '../api.js';
import { h, fill, num, when, section, table, badge, empty, field, select, Pager, loading } from '../ui.js';

export const title = 'Messages';

export const STATUSES = ['queued', 'sent', 'delivered', 'opened', 'read', 'clicked', 'replied', 'failed', 'bounced', 'unsubscribed', 'complained', 'unknown'];
const TEXT_FILTERS = [['recipient', 'Recipient (exact)'], ['recipient_domain', 'Recipient domain'], ['provider', 'Provider'], ['broadcast', 'Broadcast'], ['template', 'Template'], ['label', 'Label']];

/** The API parameters of the filters in the URL. */
export function apiFilters(s) {
  return {
    status: s.status,
    channel: s.channel,
    provider: s.provider,
    broadcast: s.broadcast,
    template: s.template,
    recipient: s.recipient,
    recipient_domain: s.recipient_domain,
    label: s.label,
    since: s.since ? `${s.since}T00:00:00Z` : '',
    until: s.until ? `${s.until}T23:59:59.999Z` : '',
  };
}

/** The deliveries table; `open(id)` shows one in the drawer. */
export function messageTable(caption, rows, open) {
  return table(
    caption,
    [
      { label: 'First seen (UTC)', cell: (m) => when(m.first_seen_at) },
      { label: 'Recipient', cell: (m) => h('button.link', { type: 'button', 'data-testid': 'open-message', 'aria-label': `Open the chronology of ${m.recipient}, ${m.status}`, onclick: () => open(m.id) }, m.recipient) },
      { label: 'Status', cell: (m) => badge(m.status) },
      { label: 'Channel', cell: (m) => m.channel },
      { label: 'Provider', cell: (m) => m.provider },
      { label: 'Broadcast', cell: (m) => m.broadcast || '–' },
      { label: 'Template', cell: (m) => m.template || '–' },
      { label: 'Opens', num: true, cell: (m) => num(m.opens) },
      { label: 'Clicks', num: true, cell: (m) => num(m.clicks) },
      { label: 'Reason', cell: (m) => m.last_error || '' },
      { label: 'Cost', num: true, cell: (m) => (m.cost ? `${m.cost} ${m.currency}` : '–') },
    ],
    rows,
    { rowAttrs: (m) => ({ 'data-id': m.id, 'data-status': m.status }), testid: 'messages-table' },
  );
}

let openDrawer = null;

/** Opens the drawer with delivery `id`'s chronology; `onClose` runs when it closes. */
export async function showMessage(id, onClose) {
  if (openDrawer) openDrawer.close(false);
  const returnFocus = document.activeElement;
  const body = h('div', {}, loading('the chronology'));
  const closeButton = h('button.secondary', { type: 'button', 'data-testid': 'close-drawer' }, 'Close');
  const drawer = h('aside.drawer', { role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'drawer-title', 'data-testid': 'drawer' }, h('header', {}, h('h2', { id: 'drawer-title' }, 'Delivery'), closeButton), body);
  const close = (notify = true) => {
    drawer.remove();
    document.removeEventListener('keydown', onKey);
    openDrawer = null;
    if (returnFocus && returnFocus.isConnected) returnFocus.focus();
    if (notify && onClose) onClose();
  };
  // Escape closes; Tab stays inside the drawer while it is open (it is modal)
  const onKey = (ev) => {
    if (ev.key === 'Escape') return close();
    if (ev.key !== 'Tab') return;
    const focusable = [...drawer.querySelectorAll('a[href], button:not([disabled]), input, select, textarea')];
    if (!focusable.length) return;
    const [first, last] = [focusable[0], focusable[focusable.length - 1]];
    if (ev.shiftKey && document.activeElement === first) {
      ev.preventDefault();
      last.focus();
    } else if (!ev.shiftKey && (document.activeElement === last || !drawer.contains(document.activeElement))) {
      ev.preventDefault();
      first.focus();
    }
  };
  closeButton.addEventListener('click', () => close());
  document.addEventListener('keydown', onKey);
  document.body.append(drawer);
  openDrawer = { close };
  closeButton.focus();
  await section(body, 'the chronology', () => api(`/v1/messages/${seg(id)}`), (d) => chronology(d));
}

function chronology({ message: m, events }) {
  return [
    h(
      'dl',
      {},
      [
        ['Recipient', h('a', { href: `/recipient?address=${encodeURIComponent(m.recipient)}`, 'data-nav': true }, m.recipient)],
        ['Status', badge(m.status)],
        ['Channel / provider', `${m.channel} / ${m.provider}`],
        ['Provider message id', m.provider_message_id],
        ['Broadcast / template', `${m.broadcast || '–'} / ${m.template || '–'}`],
        ['Opens / clicks (people)', `${m.opens} / ${m.clicks} (machine: ${m.machine_opens} / ${m.machine_clicks})`],
        ['Delivery key', m.id],
      ].map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
    ),
    events.length
      ? table(
          `${events.length} events in time order (UTC)`,
          [
            { label: 'Time', cell: (e) => when(e.occurred_at) },
            { label: 'Event', cell: (e) => badge(e.event_type) },
            { label: 'Provider', cell: (e) => e.provider },
            { label: 'Original name', cell: (e) => e.provider_event_name },
            { label: 'Machine', cell: (e) => e.machine || 'person' },
            { label: 'Reason', cell: (e) => [e.bounce_class, e.error_code, e.error_reason].filter(Boolean).join(' · ') },
            { label: 'URL', cell: (e) => e.click_url || '' },
            { label: 'Cost', num: true, cell: (e) => (e.cost ? `${e.cost} ${e.currency}` : '') },
          ],
          events,
          { rowAttrs: (e) => ({ 'data-event-id': e.event_id, 'data-event-type': e.event_type, 'data-at': e.occurred_at }), testid: 'chronology' },
        )
      : empty('No events stored for this delivery.'),
  ];
}

export async function render(root, ctx) {
  const p = ctx.params;
  const s = {
    status: p.getAll('status').filter((x) => STATUSES.includes(x)),
    channel: p.get('channel') || '',
    since: p.get('since') || '',
    until: p.get('until') || '',
    page_size: p.get('page_size') || '50',
    message: p.get('message') || '',
  };
  for (const [k] of TEXT_FILTERS) s[k] = p.get(k) || '';
  const save = () => ctx.setParams(s);
  const list = h('div', { 'data-testid': 'messages' });
  const pager = new Pager(() => load());

  // a filter change is a new view: a history entry (Back undoes it), rendered from the URL
  const changed = () => {
    ctx.setParams(s, { push: true });
    ctx.reload();
  };
  const statusChips = h(
    'div.chips',
    { role: 'group', 'aria-label': 'Status' },
    h('span.muted', {}, 'Status:'),
    STATUSES.map((st) =>
      h('button.chip', { type: 'button', 'aria-pressed': String(s.status.includes(st)), 'data-status-chip': st, onclick: () => {
        s.status = s.status.includes(st) ? s.status.filter((x) => x !== st) : [...s.status, st];
        changed();
      } }, st),
    ),
  );
  const inputs = {};
  const form = h(
    'form.controls',
    { 'aria-label': 'Filters', onsubmit: (ev) => {
      ev.preventDefault();
      for (const [k, el] of Object.entries(inputs)) s[k] = el.value.trim();
      changed();
    } },
    field('Channel', (inputs.channel = select('channel', [['', 'Any'], ['email', 'email'], ['sms', 'sms'], ['whatsapp', 'whatsapp'], ['push', 'push']], s.channel))),
    TEXT_FILTERS.map(([k, label]) => field(label, (inputs[k] = h('input', { name: k, value: s[k], 'data-testid': `filter-${k}` })))),
    field('First seen from', (inputs.since = h('input', { type: 'date', name: 'since', value: s.since }))),
    field('to', (inputs.until = h('input', { type: 'date', name: 'until', value: s.until }))),
    field('Rows per page', (inputs.page_size = select('page_size', [['25', '25'], ['50', '50'], ['100', '100'], ['500', '500']], s.page_size))),
    h('button', { type: 'submit', 'data-testid': 'apply-filters' }, 'Apply'),
  );
  const active = [
    ...s.status.map((st) => ['status', st]),
    ...['channel', ...TEXT_FILTERS.map(([k]) => k), 'since', 'until'].filter((k) => s[k]).map((k) => [k, s[k]]),
  ];
  const activeChips = active.length
    ? h('div.chips', { 'data-testid': 'active-filters' }, h('span.muted', {}, 'Filters:'), active.map(([k, v]) =>
        h('button.chip.active', { type: 'button', 'aria-label': `Remove filter ${k} ${v}`, onclick: () => {
          if (k === 'status') s.status = s.status.filter((x) => x !== v);
          else s[k] = '';
          changed();
        } }, `${k}: ${v} ×`)),
        h('button.secondary', { type: 'button', onclick: () => { for (const k of Object.keys(s)) s[k] = k === 'status' ? [] : k === 'page_size' ? s.page_size : ''; changed(); } }, 'Clear all'))
    : h('p.muted', { 'data-testid': 'active-filters' }, 'No filters: every delivery, newest first.');

  fill(root, h('h1', {}, 'Messages'), statusChips, form, activeChips, list);

  const open = (id) => {
    s.message = id;
    save();
    showMessage(id, () => {
      s.message = '';
      save();
    });
  };
  async function load() {
    await section(list, 'deliveries', () => api('/v1/messages', { params: { ...apiFilters(s), page_size: s.page_size, page_token: pager.token } }), (page) =>
      page.messages.length
        ? [messageTable(`${page.messages.length} deliveries on this page, newest first`, page.messages, open), pager.controls(page.next_page_token)]
        : [empty(active.length ? 'No delivery matches these filters.' : 'No deliveries yet.', active.length ? 'Remove a filter to see more.' : 'Send something through a provider, or run scripts/demo.sh.'), pager.controls(null)],
    );
  }
  await load();
  if (s.message) showMessage(s.message, () => { s.message = ''; save(); });
  return () => openDrawer && openDrawer.close(false);
}

