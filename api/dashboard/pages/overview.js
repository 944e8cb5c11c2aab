// Overview: KPI tiles against the previous period, a time series with an optional breakdown,
// sender-health flags and the provisional marker, refreshed live while the page is open.
import { api } from '../api.js';
import { h, fill, num, pct, when, today, addDays, money, section, field, select, empty, table } from '../ui.js';

export const title = 'Overview';

const PRESETS = [['today', 'Today'], ['7', 'Last 7 days'], ['30', 'Last 30 days'], ['90', 'Last 90 days'], ['month', 'This month'], ['custom', 'Custom']];
const METRICS = [
  ['sent', 'Sent', 'counts'], ['delivered', 'Delivered', 'counts'], ['opened', 'Opens (people)', 'human_counts'],
  ['clicked', 'Clicks (people)', 'human_counts'], ['bounced', 'Bounces', 'counts'], ['complained', 'Complaints', 'counts'],
  ['unsubscribed', 'Unsubscribes', 'counts'], ['failed', 'Failed', 'counts'],
];
const COLORS = ['#0b5cad', '#b3261e', '#1e6b34', '#7b3fa0', '#a35a00', '#00707a', '#5a5a5a', '#c2185b'];

/** The range of a preset in `tz`: [from, to] as `YYYY-MM-DD`, both inclusive. */
export function rangeOf(preset, tz, from, to) {
  const t = today(tz);
  switch (preset) {
    case 'today': return [t, t];
    case 'month': return [`${t.slice(0, 8)}01`, t];
    case 'custom': return [from || addDays(t, -6), to || t];
    default: return [addDays(t, -(Number(preset) || 7) + 1), t];
  }
}

export async function render(root, ctx) {
  const p = ctx.params;
  const zones = ctx.config.time_zones || ['UTC'];
  const s = {
    range: p.get('range') || '7',
    from: p.get('from') || '',
    to: p.get('to') || '',
    tz: zones.includes(p.get('tz')) ? p.get('tz') : 'UTC',
    granularity: p.get('granularity') || 'day',
    group: p.get('group') || '',
    metric: METRICS.some((m) => m[0] === p.get('metric')) ? p.get('metric') : 'sent',
    refresh: p.get('refresh') ?? '30',
  };
  const save = () => ctx.setParams(s);

  const control = (name, options, label) => {
    const el = select(name, options, s[name]);
    el.dataset.testid = name;
    el.addEventListener('change', () => {
      s[name] = el.value;
      save();
      if (name === 'range' || name === 'refresh') return ctx.reload();
      load();
    });
    return field(label, el);
  };
  const dateInput = (name, label) => {
    const el = h('input', { type: 'date', name, value: s[name] || rangeOf('7', s.tz)[name === 'from' ? 0 : 1], 'data-testid': name });
    el.addEventListener('change', () => {
      s[name] = el.value;
      save();
      load();
    });
    return field(label, el);
  };

  const banners = h('div', { 'data-testid': 'banners' });
  const tiles = h('div', { 'data-testid': 'kpis' });
  const chart = h('div.chart', { 'data-testid': 'chart', role: 'img', 'aria-label': 'Time series chart; the same numbers are in the table below' });
  const chartTable = h('div');
  const updated = h('p.muted', { 'aria-live': 'polite', 'data-testid': 'updated' });
  fill(
    root,
    h('h1', {}, 'Overview'),
    h(
      'form.controls',
      { onsubmit: (e) => e.preventDefault(), 'aria-label': 'Range and view' },
      control('range', PRESETS, 'Range'),
      s.range === 'custom' ? [dateInput('from', 'From'), dateInput('to', 'To')] : null,
      control('tz', zones.map((z) => [z, z]), 'Time zone'),
      control('granularity', [['day', 'Day'], ['week', 'Week (ISO)'], ['month', 'Month']], 'Buckets'),
      control('group', [['', 'None'], ['channel', 'Channel'], ['provider', 'Provider']], 'Breakdown'),
      control('metric', METRICS.map(([v, l]) => [v, l]), 'Chart shows'),
      control('refresh', [['0', 'Off'], ['10', 'Every 10 s'], ['30', 'Every 30 s'], ['60', 'Every minute']], 'Live refresh'),
    ),
    banners,
    h('h2', {}, 'Key figures'),
    tiles,
    h('h2', {}, 'Over time'),
    chart,
    chartTable,
    updated,
  );

  let plot = null;
  // one load at a time; a change made while one runs loads again after it (a live refresh
  // that finds one running is simply skipped)
  let busy = false;
  let again = false;
  async function load(quiet = false) {
    if (busy) {
      again = again || !quiet;
      return;
    }
    busy = true;
    const [from, to] = rangeOf(s.range, s.tz, s.from, s.to);
    const base = { from, to, tz: s.tz };
    try {
      // one request feeds the tiles and the provisional marker
      const kpi = api('/v1/stats', { params: { ...base, granularity: 'day', compare: 'previous_period' } });
      kpi.catch(() => {});
      await Promise.all([
        section(banners, 'sender health', () => Promise.all([api('/v1/senders/health', { params: { flagged: true } }), kpi]), ([health, stats]) => showBanners(health, stats, s.tz), { quiet }),
        section(tiles, 'key figures', () => kpi, showTiles, { quiet }),
        section(chartTable, 'the time series', () => api('/v1/stats', { params: { ...base, granularity: s.granularity, group_by: s.group } }), (stats) => {
          if (plot) plot.destroy();
          plot = null;
          const view = chartData(stats, s.metric, s.group);
          plot = drawChart(chart, view);
          return showChartTable(view, stats);
        }, { quiet }),
      ]);
      updated.textContent = `Updated ${when(new Date().toISOString(), s.tz)} (${s.tz}).`;
    } finally {
      busy = false;
      if (again) {
        again = false;
        load();
      }
    }
  }
  await load();
  const every = Number(s.refresh);
  const timer = every > 0 ? setInterval(() => load(true), every * 1000) : null;
  return () => {
    if (timer) clearInterval(timer);
    if (plot) plot.destroy();
  };
}

function showBanners(health, stats, tz) {
  const out = [];
  for (const f of health.senders.filter((x) => x.flagged)) {
    out.push(h('div.banner.warn', { role: 'alert', 'data-testid': 'health-flag' }, h('strong', {}, 'Sender health: '), `${f.provider} ${f.sending_domain || f.sending_account} is flagged (${f.reasons.join(', ')}) since ${when(f.evaluated_at, tz)}.`));
  }
  const pr = stats.provisional;
  const asOf = stats.as_of ? `Data as of ${when(stats.as_of, tz)} (${tz}).` : 'No events applied yet.';
  if (pr.denominator === 0) {
    out.push(h('div.banner.info', { 'data-testid': 'provisional', 'data-provisional': 'false' }, `No deliveries in this range. ${asOf}`));
  } else if (pr.numerator > 0) {
    out.push(h('div.banner.warn', { 'data-testid': 'provisional', 'data-provisional': 'true' }, h('strong', {}, 'Provisional: '), `${num(pr.numerator)} of ${num(pr.denominator)} deliveries in this range (${pct(pr)}) have no final status yet; these numbers can still change. ${asOf}`));
  } else {
    out.push(h('div.banner.good', { 'data-testid': 'provisional', 'data-provisional': 'false' }, h('strong', {}, 'Settled: '), `every delivery in this range has a final status. ${asOf}`));
  }
  return out;
}

function delta(cur, prev, kind) {
  if (kind === 'rate') {
    if (cur.value === null || prev.value === null) return h('p.delta', {}, 'no previous rate to compare');
    const pp = (cur.value - prev.value) * 100;
    return h(`p.delta.${pp > 0 ? 'up' : pp < 0 ? 'down' : 'flat'}`, {}, `${pp >= 0 ? '+' : '−'}${Math.abs(pp).toFixed(1)} pp vs previous period`);
  }
  const d = cur - prev;
  const rel = prev > 0 ? ` (${d >= 0 ? '+' : '−'}${Math.abs((d / prev) * 100).toFixed(1)} %)` : '';
  return h(`p.delta.${d > 0 ? 'up' : d < 0 ? 'down' : 'flat'}`, {}, `${d >= 0 ? '+' : '−'}${num(Math.abs(d))}${rel} vs previous period`);
}

function showTiles(stats) {
  const cur = stats.series[0]?.total;
  const prev = stats.previous?.[0]?.total;
  if (!cur) return empty('No numbers for this range.');
  const provisional = stats.provisional.numerator > 0;
  const countTile = (key, label, value, before) =>
    h(`section.tile${provisional ? '.provisional' : ''}`, { 'data-kpi': key, 'data-value': value, 'aria-label': label }, h('h3', {}, label), h('p.value', {}, num(value)), h('p.parts', {}, '\u00a0'), prev ? delta(value, before, 'count') : null);
  const rateTile = (key, label, rate, before) =>
    h(
      `section.tile${provisional ? '.provisional' : ''}`,
      { 'data-kpi': key, 'data-numerator': rate.numerator, 'data-denominator': rate.denominator, 'aria-label': label },
      h('h3', {}, label),
      h('p.value', {}, pct(rate)),
      h('p.parts', {}, `${num(rate.numerator)} of ${num(rate.denominator)}`),
      prev ? delta(rate, before, 'rate') : null,
    );
  const r = cur.rates;
  const pr = prev?.rates;
  const costs = Object.keys({ ...cur.cost, ...(prev?.cost || {}) });
  const nothing = Object.values(cur.counts).every((v) => v === 0);
  return [
    nothing ? empty('No events in this range.', 'Pick a longer range, or check that the pipeline is receiving webhooks.') : null,
    h(
      'div.tiles',
      {},
      countTile('sent', 'Sent', cur.counts.sent, prev?.counts.sent),
      rateTile('delivered', 'Delivered', r.delivery, pr?.delivery),
      rateTile('opened', 'Opened (people)', r.human.open, pr?.human.open),
      rateTile('clicked', 'Clicked (people)', r.human.click, pr?.human.click),
      rateTile('bounced', 'Hard bounces', r.bounce, pr?.bounce),
      rateTile('complained', 'Complaints', r.complaint, pr?.complaint),
      countTile('unsubscribed', 'Unsubscribes', cur.counts.unsubscribed, prev?.counts.unsubscribed),
      costs.length
        ? costs.map((c) => h('section.tile', { 'data-kpi': `cost-${c}`, 'aria-label': `Cost ${c}` }, h('h3', {}, `Cost (${c})`), h('p.value', {}, cur.cost[c] || '0'), h('p.parts', {}, c), h('p.delta', {}, `previous period: ${prev?.cost[c] || '0'} ${c}`)))
        : h('section.tile', { 'data-kpi': 'cost' }, h('h3', {}, 'Cost'), h('p.value', {}, money({})), h('p.parts', {}, 'no costs reported')),
    ),
    provisional ? h('p.muted', {}, '* provisional: some deliveries in this range have no final status yet.') : null,
  ];
}

/** The chosen metric per bucket, one column per series. */
function chartData(stats, metric, group) {
  const [, label, field] = METRICS.find((m) => m[0] === metric);
  const buckets = stats.series[0]?.buckets.map((b) => b.start) || [];
  const series = stats.series.map((sr) => ({
    name: group ? Object.values(sr.group).join(' / ') || '(none)' : label,
    values: sr.buckets.map((b) => b.totals[field][metric] ?? 0),
    total: sr.total[field][metric] ?? 0,
  }));
  return { label, buckets, series };
}

function drawChart(el, view) {
  fill(el);
  if (!window.uPlot || !view.buckets.length) {
    el.append(empty(window.uPlot ? 'No buckets in this range.' : 'The chart library did not load; the table below has the numbers.'));
    return null;
  }
  const xs = view.buckets.map((_, i) => i);
  const opts = {
    width: Math.max(320, el.clientWidth - 16),
    height: 300,
    scales: { x: { time: false } },
    axes: [{ values: (u, splits) => splits.map((i) => (Number.isInteger(i) ? view.buckets[i] ?? '' : '')) }, {}],
    series: [{ label: 'Bucket', value: (u, i) => view.buckets[i] ?? '' }, ...view.series.map((sr, i) => ({ label: sr.name, stroke: COLORS[i % COLORS.length], width: 2, points: { show: true } }))],
  };
  return new window.uPlot(opts, [xs, ...view.series.map((sr) => sr.values)], el);
}

function showChartTable(view, stats) {
  if (!view.series.length) return empty('No data for this breakdown in this range.');
  const columns = [{ label: `Bucket start (${stats.tz})`, cell: (i) => view.buckets[i] }, ...view.series.map((sr, j) => ({ label: sr.name, num: true, cell: (i) => num(sr.values[i]), j }))];
  const t = table(`${view.label} per ${stats.granularity}, ${stats.from} to ${stats.to} (${stats.tz})`, columns, view.buckets.map((_, i) => i), { rowAttrs: (i) => ({ 'data-bucket': view.buckets[i] }), testid: 'chart-table' });
  t.append(h('tfoot', {}, h('tr', {}, h('td', {}, 'Total'), view.series.map((sr) => h('td.num', { 'data-total': sr.name }, num(sr.total))))));
  return h('details', { open: true }, h('summary', {}, 'Chart data as a table'), t);
}
