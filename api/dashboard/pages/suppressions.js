// Suppressions: search the list, add addresses with a reason, remove one with a reason, and
// the history of an address (every change: who, when, why).
import { api, seg, ApiError } from '../api.js';
import { h, fill, when, section, table, empty, field, select, Pager } from '../ui.js';

export const title = 'Suppressions';

const SCOPES = ['all', 'email', 'email_marketing', 'sms', 'whatsapp', 'push'];
const REASONS = ['complaint', 'hard_bounce', 'push_token_invalid', 'unsubscribe', 'soft_bounces'];

/** A refusal from an endpoint this server may not have yet, said plainly. */
function explain(err, what) {
  if (err instanceof ApiError && err.status === 404 && err.problem?.detail?.includes('no such endpoint')) return `This server does not support ${what} yet.`;
  if (err instanceof ApiError && err.status === 403) return `This key may not ${what} (it needs the suppressions:write scope).`;
  return [err.message, ...(err.reasons || [])].join(' ');
}

export async function render(root, ctx) {
  const p = ctx.params;
  const s = { prefix: p.get('prefix') || '', scope: p.get('scope') || '', reason: p.get('reason') || '', address: p.get('address') || '' };
  const save = () => ctx.setParams(s);
  const list = h('div', { 'data-testid': 'suppression-list' });
  const history = h('section', { 'data-testid': 'history', 'aria-live': 'polite' });
  const notice = h('div', { role: 'status', 'data-testid': 'notice' });
  const removal = h('div', { 'data-testid': 'removal' });
  const pager = new Pager(() => loadList());

  const prefix = h('input', { type: 'search', name: 'prefix', value: s.prefix, 'data-testid': 'search-prefix' });
  const scope = select('scope', [['', 'Any'], ...SCOPES.map((x) => [x, x])], s.scope);
  const reason = select('reason', [['', 'Any'], ...REASONS.map((x) => [x, x])], s.reason);
  const search = h('form.controls', { role: 'search', 'aria-label': 'Search suppressions', onsubmit: (ev) => {
    ev.preventDefault();
    Object.assign(s, { prefix: prefix.value.trim(), scope: scope.value, reason: reason.value });
    save();
    pager.reset();
    loadList();
  } }, field('Address starts with', prefix), field('Scope', scope), field('Reason', reason), h('button', { type: 'submit', 'data-testid': 'search' }, 'Search'));

  const addAddresses = h('textarea', { name: 'addresses', rows: 3, cols: 40, required: true, 'data-testid': 'add-addresses' });
  const addReason = h('input', { name: 'reason', required: true, 'data-testid': 'add-reason', placeholder: 'e.g. asked by phone to stop' });
  const addScope = select('scope', SCOPES.map((x) => [x, x]), 'all');
  const add = h('form.controls', { 'aria-label': 'Add suppressions', onsubmit: async (ev) => {
    ev.preventDefault();
    const addresses = addAddresses.value.split(/[\s,;]+/).map((a) => a.trim()).filter(Boolean);
    if (!addresses.length) return;
    try {
      const r = await api('/v1/suppressions', { method: 'POST', body: { addresses, reason: addReason.value.trim(), scope: addScope.value } });
      fill(notice, h('p.banner.good', {}, `Suppressed ${r.changes.length} address${r.changes.length === 1 ? '' : 'es'}: ${r.changes.map((c) => c.address).join(', ')}.`));
      addAddresses.value = '';
      addReason.value = '';
      s.address = addresses[0].toLowerCase();
      save();
      loadList();
      loadHistory();
    } catch (err) {
      fill(notice, h('p.state.error', { role: 'alert' }, `Could not add: ${explain(err, 'adding suppressions')}`));
    }
  } }, field('Addresses (one per line)', addAddresses), field('Reason', addReason), field('Scope', addScope), h('button', { type: 'submit', 'data-testid': 'add' }, 'Suppress'));

  fill(root, h('h1', {}, 'Suppressions'), search, notice, removal, list, h('h2', {}, 'Add addresses'), add, history);

  function askRemoval(address) {
    const why = h('input', { name: 'reason', required: true, 'data-testid': 'remove-reason', placeholder: 'why may we send again?' });
    const cancel = () => fill(removal);
    fill(removal, h('form.controls', { 'aria-label': `Remove ${address}`, onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await api(`/v1/suppressions/${seg(address)}`, { method: 'DELETE', params: { reason: why.value.trim() } });
        fill(notice, h('p.banner.good', {}, `Removed ${address} from the suppression list.`));
        cancel();
        s.address = address;
        save();
        loadList();
        loadHistory();
      } catch (err) {
        fill(notice, h('p.state.error', { role: 'alert' }, `Could not remove ${address}: ${explain(err, 'removing suppressions')}`));
      }
    } }, h('p', {}, h('strong', {}, `Remove ${address}? `), 'Sending to it will be allowed again; a later hard bounce or complaint suppresses it again.'),
    field('Reason', why), h('button.danger', { type: 'submit', 'data-testid': 'confirm-remove' }, 'Remove suppression'), h('button.secondary', { type: 'button', onclick: cancel }, 'Cancel')));
    why.focus();
  }

  function showHistoryOf(address) {
    s.address = address;
    save();
    loadHistory();
  }

  async function loadList() {
    await section(list, 'suppressions', () => api('/v1/suppressions', { params: { address_prefix: s.prefix, scope: s.scope, reason: s.reason, page_size: 50, page_token: pager.token } }), (page) =>
      page.suppressions.length
        ? [
            table('Suppressed addresses, by address', [
              { label: 'Address', cell: (x) => h('button.link', { type: 'button', 'data-testid': 'show-history', onclick: () => showHistoryOf(x.address) }, x.address) },
              { label: 'Scope', cell: (x) => x.scope },
              { label: 'Reason', cell: (x) => x.reason },
              { label: 'Channel', cell: (x) => x.channel },
              { label: 'Since (UTC)', cell: (x) => when(x.occurred_at) },
              { label: 'Remove', cell: (x) => h('button.secondary', { type: 'button', 'data-testid': 'remove', 'aria-label': `Remove ${x.address}`, onclick: () => askRemoval(x.address) }, 'Remove…') },
            ], page.suppressions, { rowAttrs: (x) => ({ 'data-address': x.address }), testid: 'suppressions-table' }),
            pager.controls(page.next_page_token),
          ]
        : empty(s.prefix || s.scope || s.reason ? 'No suppressed address matches.' : 'No suppressed addresses.'));
  }

  async function loadHistory() {
    if (!s.address) return fill(history, h('h2', {}, 'History'), empty('Pick an address in the list to see its history.'));
    fill(history, h('h2', {}, `History of ${s.address}`));
    const body = h('div');
    history.append(body);
    try {
      await section(body, 'the history', () => api(`/v1/suppressions/${seg(s.address)}`), (x) => [
        h('p', { 'data-testid': 'suppressed-now', 'data-suppressed': String(x.suppressed) }, x.suppressed ? `Suppressed now (${x.current?.reason || ''}, scope ${x.current?.scope || ''}).` : 'Not suppressed now.'),
        x.history.length
          ? table('Every change, oldest first (UTC)', [
              { label: 'When', cell: (c) => when(c.at) },
              { label: 'Change', cell: (c) => c.action },
              { label: 'Reason', cell: (c) => [c.reason, c.note].filter(Boolean).join(' — ') },
              { label: 'Scope', cell: (c) => c.scope },
              { label: 'By', cell: (c) => (c.source === 'api' ? `API key ${c.who || '?'}` : `event ${c.event_id || ''}`) },
            ], x.history, { rowAttrs: (c) => ({ 'data-action': c.action }), testid: 'history-table' })
          : empty('No changes recorded for this address.'),
      ]);
    } catch (err) {
      fill(body, h('p.state.error', { role: 'alert' }, explain(err, 'suppression history')));
    }
  }

  await Promise.all([loadList(), loadHistory()]);
}
