// Small DOM and formatting helpers shared by the pages. Text always goes in as text nodes
// (never innerHTML), so recipients, reasons and URLs from events cannot inject markup.

/** `h('tag.class', {attr: v, onclick: f}, ...children)`: an element; children are nodes or text. */
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const intFmt = new Intl.NumberFormat('en-US');
export const num = (n) => (n === null || n === undefined ? '–' : intFmt.format(n));

/** A rate `{numerator, denominator, value}` as "12.5 %" ("–" without a denominator). */
export function pct(rate) {
  if (!rate || rate.value === null || rate.value === undefined) return '–';
  return `${(rate.value * 100).toFixed(1)} %`;
}

/** An RFC 3339 time shown in `tz` as "2026-01-31 14:05:09". */
export function when(iso, tz = 'UTC') {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' })
      .formatToParts(d)
      .map((x) => [x.type, x.value]),
  );
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

/** Today's date `YYYY-MM-DD` in `tz`. */
export function today(tz = 'UTC') {
  return new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
}

/** `YYYY-MM-DD` plus `days`. */
export function addDays(date, days) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

export function money(cost) {
  const entries = Object.entries(cost || {});
  return entries.length ? entries.map(([cur, amount]) => `${amount} ${cur}`).join(', ') : '–';
}

// ---- designed states -------------------------------------------------------------------

export const loading = (what) => h('p.state.loading', { role: 'status', 'aria-live': 'polite' }, h('span.spinner', { 'aria-hidden': 'true' }), `Loading ${what}…`);

export const empty = (message, hint) => h('div.state.empty', { role: 'status' }, h('p', {}, message), hint ? h('p.hint', {}, hint) : null);

/** An error box: what failed, the reason (per parameter on a 400), and what to do. */
export function failure(what, err) {
  const box = h('div.state.error', { role: 'alert' }, h('p', {}, h('strong', {}, `Could not load ${what}. `), err.message || String(err)));
  if (err.reasons?.length) box.append(h('ul', {}, err.reasons.map((r) => h('li', {}, r))));
  if (err.status === 403) box.append(h('p.hint', {}, 'This key lacks the scope this view needs; ask for a key with it.'));
  if (err.status === 404) box.append(h('p.hint', {}, 'This server does not offer this endpoint yet.'));
  if (err.status === 0 || err.status >= 500) box.append(h('p.hint', {}, 'The service or its database is unavailable; the view retries on the next refresh.'));
  return box;
}

/** Loads `load()` into `el` with loading / error states; `show(data)` renders the result.
 *  `quiet` (live refresh): the old content stays until the new one is there. */
export async function section(el, what, load, show, { quiet = false } = {}) {
  if (!quiet) fill(el, loading(what));
  try {
    const data = await load();
    fill(el, show(data));
    return data;
  } catch (err) {
    fill(el, failure(what, err));
    return null;
  }
}

// ---- tables ---------------------------------------------------------------------------

/** A table with a caption; `columns` = [{label, cell(row) → node|text, num?}]. */
export function table(caption, columns, rows, { rowAttrs, testid } = {}) {
  return h(
    'table',
    { 'data-testid': testid },
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, columns.map((c) => h(c.num ? 'th.num' : 'th', { scope: 'col' }, c.label)))),
    h('tbody', {}, rows.map((r) => h('tr', rowAttrs ? rowAttrs(r) : {}, columns.map((c) => h(c.num ? 'td.num' : 'td', {}, c.cell(r)))))),
  );
}

export const badge = (status) => h(`span.badge.s-${status}`, {}, status);

/** Keyset pager: `older`/`newer` buttons over a stack of page tokens. */
export class Pager {
  constructor(onChange) {
    this.tokens = [null];
    this.onChange = onChange;
  }
  get token() {
    return this.tokens[this.tokens.length - 1];
  }
  reset() {
    this.tokens = [null];
  }
  controls(nextToken) {
    const page = this.tokens.length;
    return h(
      'nav.pager',
      { 'aria-label': 'Pages' },
      h('button', { type: 'button', 'data-testid': 'newer', disabled: page === 1, onclick: () => { this.tokens.pop(); this.onChange(); } }, '← Newer'),
      h('span', { 'aria-live': 'polite', 'data-testid': 'page-number' }, `Page ${page}`),
      h('button', { type: 'button', 'data-testid': 'older', disabled: !nextToken, onclick: () => { this.tokens.push(nextToken); this.onChange(); } }, 'Older →'),
    );
  }
}

/** A labelled form control. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h('div.field', {}, h('label', { for: id }, label), control, hint ? h('small', {}, hint) : null);
}

export function select(name, options, value) {
  return h('select', { name }, options.map(([v, label]) => h('option', { value: v, selected: v === value }, label)));
}

/** Sets a bar's width (CSSOM, which the page's Content-Security-Policy allows; a `style` attribute it would block). */
export function widthOf(el, share) {
  el.style.width = `${Math.max(0, Math.min(1, share || 0)) * 100}%`;
  return el;
}
