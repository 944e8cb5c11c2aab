// Recipient: one address across channels and messages, its engagement score and how it is computed.
import { api, seg } from '../api.js';
import { h, fill, num, when, section, table, empty, field, Pager, badge } from '../ui.js';
import { messageTable, showMessage } from './messages.js';

export const title = 'Recipient';

/** The recipient's events across channels, newest first. */
const events = (address, params) => api(`/v1/recipients/${seg(address)}/events`, { params });

export async function render(root, ctx) {
  const address = (ctx.params.get('address') || '').trim();
  const input = h('input', { name: 'address', type: 'search', value: address, required: true, 'data-testid': 'recipient-address', placeholder: 'someone@example.com or +15551234567' });
  const form = h('form.controls', { role: 'search', onsubmit: (ev) => { ev.preventDefault(); ctx.navigate(`/recipient?address=${encodeURIComponent(input.value.trim())}`); } },
    field('E-mail address, phone number or device token', input), h('button', { type: 'submit' }, 'Look up'));
  if (!address) {
    fill(root, h('h1', {}, 'Recipient'), form, empty('Look up a recipient to see every message and event they had, across channels, and their engagement score.'));
    return;
  }
  const score = h('div', { 'data-testid': 'engagement' });
  const msgs = h('div', { 'data-testid': 'recipient-messages' });
  const feed = h('div', { 'data-testid': 'recipient-events' });
  fill(root, h('h1', {}, `Recipient ${address}`), form, h('h2', {}, 'Engagement'), score, h('h2', {}, 'Messages'), msgs, h('h2', {}, 'Events across channels'), feed);
  const msgPager = new Pager(() => loadMsgs());
  const evPager = new Pager(() => loadEvents());
  const loadMsgs = () => section(msgs, 'messages', () => api('/v1/messages', { params: { recipient: address, page_size: 25, page_token: msgPager.token } }), (page) =>
    page.messages.length ? [messageTable('Deliveries to this recipient, newest first', page.messages, (id) => showMessage(id)), msgPager.controls(page.next_page_token)] : empty('No deliveries to this recipient.'));
  const loadEvents = () => section(feed, 'events', () => events(address, { page_size: 50, page_token: evPager.token }), (page) =>
    page.events.length
      ? [table('Newest first (UTC)', [
          { label: 'Time', cell: (e) => when(e.occurred_at) },
          { label: 'Event', cell: (e) => badge(e.event_type) },
          { label: 'Channel', cell: (e) => e.channel },
          { label: 'Provider', cell: (e) => e.provider },
          { label: 'Broadcast', cell: (e) => e.broadcast || '–' },
          { label: 'Machine', cell: (e) => e.machine || 'person' },
          { label: 'Reason', cell: (e) => [e.bounce_class, e.error_code, e.error_reason].filter(Boolean).join(' · ') },
          { label: 'Message', cell: (e) => h('button.link', { type: 'button', onclick: () => showMessage(e.message_id) }, 'chronology') },
        ], page.events, { rowAttrs: (e) => ({ 'data-event-id': e.event_id }), testid: 'recipient-events-table' }), evPager.controls(page.next_page_token)]
      : empty('No events for this recipient.'));
  await Promise.all([
    (async () => {
      fill(score, h('p.state.loading', {}, 'Loading engagement…'));
      try {
        const e = await api(`/v1/recipients/${seg(address)}/engagement`);
        fill(score, h('div.tiles', {},
          h('section.tile', { 'data-kpi': 'score' }, h('h3', {}, 'Engagement score'), h('p.value', {}, num(e.score))),
          h('section.tile', {}, h('h3', {}, 'Opens (people / machines)'), h('p.value', {}, `${num(e.human_opens)} / ${num(e.machine_opens)}`)),
          h('section.tile', {}, h('h3', {}, 'Clicks (people)'), h('p.value', {}, num(e.human_clicks))),
          h('section.tile', {}, h('h3', {}, 'Replies'), h('p.value', {}, num(e.replies)))),
          h('p', {}, `Last open ${when(e.last_open_at)}, last click ${when(e.last_click_at)}, last reply ${when(e.last_reply_at)} (UTC).`),
          h('p', {}, h('strong', {}, 'How the score is computed: '), e.score_rule));
      } catch (err) {
        if (err.status === 404) fill(score, empty('No events for this recipient, so no score.', 'Addresses are matched case-insensitively; check the spelling.'));
        else fill(score, h('div.state.error', { role: 'alert' }, `Could not load the engagement: ${err.message}`));
      }
    })(),
    loadMsgs(),
    loadEvents(),
  ]);
}
