// The dashboard in headless Chromium, driven like a person would (playwright-core).
// Run by tests/tests/dashboard_browser.rs, which starts the stack, feeds it a generated stream
// and writes the truth to DASHBOARD_TRUTH. Every check compares what the page shows with the
// truth and with the API's own answer. Exits non-zero on the first failed check.
//
// env: DASHBOARD_URL, DASHBOARD_KEY, DASHBOARD_TRUTH (JSON file), DASHBOARD_SCREENSHOTS (dir),
//      CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';

const URL_ = process.env.DASHBOARD_URL;
const KEY = process.env.DASHBOARD_KEY;
const truth = JSON.parse(readFileSync(process.env.DASHBOARD_TRUTH, 'utf8'));
const SHOTS = process.env.DASHBOARD_SCREENSHOTS;
const TIMEOUT = 30_000;
let checks = 0;

function ok(cond, what) {
  assert.ok(cond, what);
  checks++;
  console.log(`ok ${checks} - ${what}`);
}
function eq(got, want, what) {
  assert.deepStrictEqual(got, want, what);
  checks++;
  console.log(`ok ${checks} - ${what}`);
}

/** The API, read directly (to compare the page with the API's own numbers). */
async function api(path) {
  const r = await fetch(URL_ + path, { headers: { Authorization: `Bearer ${KEY}` } });
  assert.equal(r.status, 200, `${path}: ${r.status}`);
  return r.json();
}

/** Polls `f` until it returns a truthy value, or fails with `what` after `ms`. */
async function until(what, f, ms = TIMEOUT) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const int = (text) => Number(String(text).replace(/[^0-9-]/g, ''));
const parts = (text) => {
  const m = /([\d,]+) of ([\d,]+)/.exec(text);
  assert.ok(m, `"n of d" in ${text}`);
  return [int(m[1]), int(m[2])];
};
const dayCount = (days, day, type) => (days[day] && days[day][type]) || 0;
const sum = (days, type) => Object.values(days).reduce((a, d) => a + (d[type] || 0), 0);

const profile = mkdtempSync(join(tmpdir(), 'sendtrace-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1360, height: 900 },
});
const page = context.pages()[0] || (await context.newPage());
page.setDefaultTimeout(TIMEOUT);
const pageErrors = [];
const requests = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));
// the page's Content-Security-Policy must not have to block anything it does itself
page.on('console', (m) => m.type() === 'error' && /Content Security Policy/i.test(m.text()) && pageErrors.push(m.text()));
page.on('request', (r) => requests.push(r.url()));
/** Saves a screenshot of the page, and checks that every control on it has a label and every
 *  button a name (what a screen reader announces; the page must be usable without a mouse). */
async function shot(name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  const unlabelled = await page.$$eval('input, select, textarea, button', (els) =>
    els.filter((e) => e.offsetParent !== null || e.closest('[role="dialog"]'))
      .filter((e) => (e.tagName === 'BUTTON' ? !(e.getAttribute('aria-label') || e.textContent.trim()) : !(e.labels?.length || e.getAttribute('aria-label'))))
      .map((e) => e.outerHTML.slice(0, 80)));
  eq(unlabelled, [], `${name}: every visible control is labelled`);
}

try {
  // ---- sign in -----------------------------------------------------------------------
  await page.goto(`${URL_}/`);
  await page.getByLabel('API key').fill('wrong-key');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#sign-in-error:not([hidden])').waitFor();
  ok((await page.textContent('#sign-in-error')).includes('not valid'), 'a wrong key is refused on the sign-in form');
  await page.getByLabel('API key').fill(KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('[data-kpi="sent"]').waitFor();
  eq(await page.evaluate(() => Object.values(sessionStorage).length), 1, 'the key is kept in sessionStorage');
  eq(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');

  // ---- overview: tiles, chart table, time zone -------------------------------------------
  const k = truth.kpi;
  await page.locator('[data-testid="chart-table"]').waitFor();
  const tileValue = async (kpi) => int(await page.locator(`[data-kpi="${kpi}"] .value`).textContent());
  const tileParts = async (kpi) => parts(await page.locator(`[data-kpi="${kpi}"] .parts`).textContent());
  const today = (tz) => new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
  const addDays = (d, n) => { const x = new Date(`${d}T00:00:00Z`); x.setUTCDate(x.getUTCDate() + n); return x.toISOString().slice(0, 10); };
  const from = addDays(today('UTC'), -6);
  const stats = await api(`/v1/stats?granularity=day&from=${from}&to=${today('UTC')}&tz=UTC&compare=previous_period`);
  const t = stats.series[0].total;
  eq(await tileValue('sent'), k.sent, 'Sent tile = truth');
  eq(await tileValue('sent'), t.counts.sent, 'Sent tile = API');
  eq(await tileParts('delivered'), [k.delivered, k.sent], 'Delivered tile: delivered of sent = truth');
  eq(await tileParts('delivered'), [t.rates.delivery.numerator, t.rates.delivery.denominator], 'Delivered tile = API');
  eq(await tileParts('opened'), [k.human_opens, k.delivered], 'Opened (people) tile = truth (machine opens excluded)');
  eq(await tileParts('clicked'), [k.human_clicks, k.delivered], 'Clicked (people) tile = truth');
  eq(await tileParts('bounced'), [k.hard_bounces, k.sent], 'Hard bounce tile = truth');
  eq(await tileParts('complained'), [k.complained, k.delivered], 'Complaint tile = truth');
  eq(await tileValue('unsubscribed'), k.unsubscribed, 'Unsubscribes tile = truth');
  ok((await page.locator('[data-kpi="sent"] .delta').textContent()).includes(`+${k.sent.toLocaleString('en-US')}`), 'Sent tile shows the change against the (empty) previous period');
  eq(await page.locator('[data-testid="provisional"]').getAttribute('data-provisional'), String(stats.provisional.numerator > 0), 'the provisional marker follows the API');
  const flagged = (await api('/v1/senders/health?flagged=true')).senders.filter((x) => x.flagged).length;
  ok(flagged > 0, 'the stream flags its sender (complaint rate)');
  eq(await page.locator('[data-testid="health-flag"]').count(), flagged, `one sender-health banner per flagged sender (${flagged})`);

  async function chartRows() {
    return page.$$eval('[data-testid="chart-table"] tbody tr', (rows) => rows.map((r) => [r.dataset.bucket, Number(r.cells[1].textContent.replace(/[^0-9]/g, ''))]));
  }
  async function checkDays(days, tz) {
    const rows = await chartRows();
    eq(rows.length, 7, `7 daily buckets (${tz})`);
    eq(rows.map(([d]) => d), [...Array(7).keys()].map((i) => addDays(today(tz), i - 6)), `the buckets are the last 7 days in ${tz}`);
    eq(Object.fromEntries(rows), Object.fromEntries(rows.map(([d]) => [d, dayCount(days, d, 'sent')])), `sent per day in ${tz} = truth`);
    const total = int(await page.locator('[data-testid="chart-table"] tfoot td.num').textContent());
    eq(total, sum(days, 'sent'), `chart total (${tz}) = truth`);
    const api_ = await api(`/v1/stats?granularity=day&from=${addDays(today(tz), -6)}&to=${today(tz)}&tz=${encodeURIComponent(tz)}`);
    eq(Object.fromEntries(rows), Object.fromEntries(api_.series[0].buckets.map((b) => [b.start, b.totals.counts.sent])), `chart (${tz}) = API`);
    ok((await page.locator('.chart canvas').count()) > 0, `the chart is drawn (${tz})`);
  }
  await checkDays(truth.days_utc, 'UTC');
  await shot('overview');
  await page.getByLabel('Time zone').selectOption(truth.zone);
  await page.waitForFunction((z) => document.querySelector('[data-testid="chart-table"] caption')?.textContent.includes(`(${z})`), truth.zone);
  ok(new URL(page.url()).searchParams.get('tz') === truth.zone, 'the zone is kept in the URL');
  await checkDays(truth.days_zone, truth.zone);
  await shot('overview-zone');
  const captionHas = (text) => page.waitForFunction((t) => document.querySelector('[data-testid="chart-table"] caption')?.textContent.includes(t), text);
  const footTotals = () => page.$$eval('[data-testid="chart-table"] tfoot td.num', (tds) => Object.fromEntries(tds.map((td) => [td.dataset.total, Number(td.textContent.replace(/[^0-9]/g, ''))])));
  // a breakdown by channel: one column per channel, the totals add up to the truth
  await page.getByLabel('Breakdown').selectOption('channel');
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="chart-table"] thead th')].some((th) => th.textContent === 'email'));
  eq(await footTotals(), { email: k.sent }, 'breakdown by channel: the email series holds every send');
  // ISO weeks: every event of the range falls in the week buckets that cover it
  await page.getByLabel('Buckets').selectOption('week');
  await captionHas('per week');
  eq(Object.values(await footTotals()).reduce((a, b) => a + b, 0), k.sent, 'weekly buckets: the total = truth');
  // a custom range: one day picked with the date inputs shows that day only
  await page.getByLabel('Buckets').selectOption('day');
  await page.getByLabel('Range', { exact: true }).selectOption('custom');
  const busiest = Object.entries(truth.days_zone).sort((a, b) => (b[1].sent || 0) - (a[1].sent || 0))[0][0];
  await page.getByLabel('From', { exact: true }).fill(busiest);
  await page.getByLabel('To', { exact: true }).fill(busiest);
  await captionHas(`${busiest} to ${busiest}`);
  eq(await chartRows(), [[busiest, dayCount(truth.days_zone, busiest, 'sent')]], `custom range ${busiest} (${truth.zone}): that day's sends`);
  eq(await tileValue('sent'), dayCount(truth.days_zone, busiest, 'sent'), 'the tiles follow the custom range');
  // live refresh: with `refresh=10` the page asks the API again on its own and says when
  await page.goto(`${URL_}/?refresh=10`);
  await page.locator('[data-testid="chart-table"]').waitFor();
  // the first load is over once it says when (the chart can show before the other sections end)
  await page.waitForFunction(() => document.querySelector('[data-testid="updated"]')?.textContent.startsWith('Updated '));
  const first = await page.textContent('[data-testid="updated"]');
  const before = requests.filter((u) => u.includes('/v1/stats?')).length;
  await until('a live refresh', async () => (await page.textContent('[data-testid="updated"]')) !== first, 25_000);
  ok(requests.filter((u) => u.includes('/v1/stats?')).length > before, 'the overview refreshes itself while open');

  // ---- messages: a filter narrows the table and survives a reload ---------------------------
  const ids = () => page.$$eval('[data-testid="messages-table"] tbody tr', (rows) => rows.map((r) => r.dataset.id));
  await page.getByRole('link', { name: 'Messages', exact: true }).click();
  await page.locator('[data-testid="messages-table"]').waitFor();
  await page.locator('[data-status-chip="bounced"]').click();
  await page.waitForFunction(() => document.querySelector('[data-status-chip="bounced"]')?.getAttribute('aria-pressed') === 'true' && !document.querySelector('.loading'));
  await page.locator('[data-testid="messages-table"], [data-testid="messages"] .empty').first().waitFor();
  ok(new URL(page.url()).searchParams.getAll('status').join() === 'bounced', 'the status filter is in the URL');
  eq((await ids()).sort(), [...truth.bounced].sort(), 'the bounced filter lists exactly the bounced deliveries');
  ok(truth.bounced.length < truth.deliveries.length, 'the filter narrowed the table');
  await page.reload();
  await page.locator('[data-testid="messages-table"]').waitFor();
  eq(await page.locator('[data-status-chip="bounced"]').getAttribute('aria-pressed'), 'true', 'after a reload the chip is still on');
  eq((await ids()).sort(), [...truth.bounced].sort(), 'after a reload the same rows');
  await shot('messages-filtered');

  // ---- paging shows every message once -------------------------------------------------------
  await page.goto(`${URL_}/messages?page_size=25`);
  await page.locator('[data-testid="messages-table"]').waitFor();
  const seen = [];
  for (let n = 1; ; n++) {
    await page.waitForFunction((n) => document.querySelector('[data-testid="page-number"]')?.textContent === `Page ${n}`, n);
    seen.push(...(await ids()));
    if (await page.locator('[data-testid="older"]').isDisabled()) break;
    await page.locator('[data-testid="older"]').click();
    assert.ok(n < 100, 'pages end');
  }
  eq(seen.length, new Set(seen).size, `paging: no delivery twice (${seen.length} rows)`);
  eq([...seen].sort(), [...truth.deliveries].sort(), 'paging: every delivery once');
  ok(seen.length > 25, 'paging went over more than one page');

  // ---- the drawer shows the chronology in time order -----------------------------------------
  const c = truth.chronology;
  await page.getByLabel('Recipient (exact)').fill(c.recipient);
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.locator(`tr[data-id="${c.delivery}"] [data-testid="open-message"]`).click();
  await page.locator('[data-testid="chronology"]').waitFor();
  ok(new URL(page.url()).searchParams.get('message') === c.delivery, 'the open drawer is in the URL');
  const events = await page.$$eval('[data-testid="chronology"] tbody tr', (rows) => rows.map((r) => [r.dataset.eventId, r.dataset.at]));
  eq(events.map(([id]) => id), c.events, 'the drawer lists the delivery\'s events in time order');
  ok(events.every(([, at], i) => i === 0 || events[i - 1][1] <= at), 'the shown times ascend');
  await shot('messages-drawer');
  await page.keyboard.press('Escape');
  await page.locator('[data-testid="drawer"]').waitFor({ state: 'detached' });
  ok(await page.evaluate(() => document.activeElement?.dataset.testid === 'open-message'), 'Escape closes the drawer and gives the focus back');

  // ---- funnels and one broadcast's report ---------------------------------------------------
  await page.getByRole('link', { name: 'Broadcasts & funnels' }).click();
  await page.locator('[data-testid="funnel-table"]').waitFor();
  const funnel = await page.$$eval('[data-testid="funnel-table"] tbody tr', (rows) => Object.fromEntries(rows.map((r) => [r.dataset.id, Number(r.dataset.deliveries)])));
  eq(funnel, truth.broadcasts, 'deliveries per broadcast = truth');
  await shot('funnels');
  const b = Object.keys(truth.broadcasts)[0];
  await page.getByRole('link', { name: b, exact: true }).click();
  await page.locator('[data-testid="report"] [data-testid="messages-table"]').waitFor();
  const report = await api(`/v1/broadcasts/${b}/report`);
  const [st] = Object.keys(report.counts_by_status);
  await page.locator(`[data-testid="report-counts"] [data-status-chip="${st}"]`).click();
  await page.waitForFunction((st) => document.querySelector(`[data-status-chip="${st}"]`)?.getAttribute('aria-pressed') === 'true' && document.querySelector('[data-testid="report"] [data-testid="messages-table"]'), st);
  const statuses = await page.$$eval('[data-testid="report"] tbody tr', (rows) => rows.map((r) => r.dataset.status));
  eq(statuses.length, Math.min(50, report.counts_by_status[st]), `the report's status filter shows the ${st} deliveries of ${b}`);
  ok(statuses.every((s) => s === st), 'only that status');
  await shot('broadcast-report');

  // ---- delivery issues -------------------------------------------------------------------------
  await page.getByRole('link', { name: 'Delivery issues' }).click();
  await page.locator('[data-testid="problem-messages"] [data-testid="messages-table"]').waitFor();
  await page.locator('[data-testid="bounce-reasons"] .loading').waitFor({ state: 'detached' });
  const problems = await page.$$eval('[data-testid="problem-messages"] tbody tr', (rows) => rows.map((r) => r.dataset.id));
  eq(problems.sort(), [...truth.problems].sort().slice(0, 50), 'failed, bounced and complained deliveries = truth');
  const to30 = today('UTC');
  const bounces = await fetch(`${URL_}/v1/stats/bounces?from=${addDays(to30, -29)}&to=${to30}`, { headers: { Authorization: `Bearer ${KEY}` } });
  eq(bounces.status, 200, 'GET /v1/stats/bounces answers');
  const br = await bounces.json();
  const shown = await page.$$eval('[data-testid="bounce-classes"] [data-class]', (els) => Object.fromEntries(els.map((e) => [e.dataset.class, Number(e.textContent.replace(/[^0-9]/g, ''))])));
  eq(shown, Object.fromEntries(br.classes.map((c) => [c.class, c.count])), 'bounce reasons by class = API');
  eq(Object.values(shown).reduce((x, y) => x + y, 0), truth.bounce_events, 'the classes add up to the bounced and failed events of the truth');
  eq(await page.$$eval('[data-testid="bounces-by-domain"] tbody tr', (rows) => rows.length), br.by_domain.length, 'every top reason by recipient domain is listed');
  eq(await page.$$eval('[data-testid="bounces-by-provider"] tbody tr', (rows) => rows.length), br.by_provider.length, 'every top reason by provider is listed');
  await shot('issues');

  // ---- suppressions: add, see it in the list and its history, remove ---------------------------
  await page.getByRole('link', { name: 'Suppressions', exact: true }).click();
  await page.locator('[data-testid="suppression-list"] .loading').waitFor({ state: 'detached' });
  {
    const addr = truth.suppress;
    await page.getByLabel('Addresses (one per line)').fill(addr);
    await page.getByTestId('add-reason').fill('browser test: asked to stop');
    await page.getByRole('button', { name: 'Suppress' }).click();
    await page.locator('[data-testid="notice"] .good').waitFor();
    const row = page.locator(`[data-testid="suppressions-table"] tr[data-address="${addr}"]`);
    await page.getByLabel('Address starts with').fill(addr);
    await until(`${addr} in the list`, async () => {
      await page.getByTestId('search').click();
      await page.locator('[data-testid="suppression-list"] .loading').waitFor({ state: 'detached' });
      return (await row.count()) === 1;
    });
    ok(true, 'an added address shows in the list');
    const actions = () => page.$$eval('[data-testid="history-table"] tbody tr', (rows) => rows.map((r) => r.dataset.action));
    await page.locator('[data-testid="history-table"]').waitFor();
    ok((await actions()).includes('added'), 'its history shows the addition');
    await row.getByTestId('remove').click();
    await page.getByTestId('remove-reason').fill('browser test: consent given again');
    await page.getByTestId('confirm-remove').click();
    await page.locator('[data-testid="notice"] .good').filter({ hasText: 'Removed' }).waitFor();
    await until(`${addr} gone from the list`, async () => {
      await page.getByTestId('search').click();
      await page.locator('[data-testid="suppression-list"] .loading').waitFor({ state: 'detached' });
      return (await row.count()) === 0;
    });
    ok(true, 'a removed address leaves the list');
    await page.locator('[data-testid="history-table"]').waitFor();
    const after = await actions();
    ok(after.indexOf('added') >= 0 && after.lastIndexOf('removed') > after.indexOf('added'), `its history shows the addition, then the removal (${after.join(', ')})`);
    eq(await page.getByTestId('suppressed-now').getAttribute('data-suppressed'), 'false', 'and that it is not suppressed now');
  }
  await shot('suppressions');

  // ---- recipient ---------------------------------------------------------------------------------
  await page.getByRole('link', { name: 'Recipient', exact: true }).click();
  await page.getByTestId('recipient-address').fill(truth.recipient.address);
  await page.getByRole('button', { name: 'Look up' }).click();
  await page.locator('[data-testid="recipient-events-table"]').waitFor();
  await page.locator('[data-kpi="score"]').waitFor();
  const evs = await page.$$eval('[data-testid="recipient-events-table"] tbody tr', (rows) => rows.map((r) => r.dataset.eventId));
  eq(evs.sort(), [...truth.recipient.events].sort(), 'the recipient page lists every event of the address (every spelling)');
  const eng = await api(`/v1/recipients/${encodeURIComponent(truth.recipient.address)}/engagement`);
  eq(await tileValue('score'), eng.score, 'the engagement score = API');
  await shot('recipient');

  // ---- designed empty and error states ----------------------------------------------------------
  const signInAs = async (key) => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#sign-in:not([hidden])').waitFor();
    eq(await page.evaluate(() => sessionStorage.length), 0, 'signing out forgets the key');
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#sign-in').waitFor({ state: 'hidden' });
  };
  await signInAs(process.env.DASHBOARD_EMPTY_KEY);
  await page.goto(`${URL_}/`);
  await page.locator('[data-testid="kpis"] .empty').waitFor();
  ok((await page.textContent('[data-testid="kpis"] .empty')).includes('No events in this range'), 'a tenant without events sees an empty state on the overview');
  eq(await tileValue('sent'), 0, 'and zero tiles');
  await shot('empty-overview');
  await page.goto(`${URL_}/messages`);
  await page.locator('[data-testid="messages"] .empty').waitFor();
  ok((await page.textContent('[data-testid="messages"] .empty')).includes('No deliveries yet'), 'and an empty state on the messages page');
  await shot('empty-messages');
  await signInAs(process.env.DASHBOARD_STATS_KEY);
  await page.goto(`${URL_}/messages`);
  await page.locator('[data-testid="messages"] .error').waitFor();
  const refusal = await page.textContent('[data-testid="messages"] .error');
  ok(refusal.includes('403') && refusal.includes('messages') && refusal.includes('scope'), `a key without the messages scope sees why (${refusal.slice(0, 90)}…)`);
  await shot('forbidden-messages');

  // ---- across the run -------------------------------------------------------------------------
  const keys = [KEY, process.env.DASHBOARD_EMPTY_KEY, process.env.DASHBOARD_STATS_KEY];
  eq(requests.filter((u) => keys.some((k) => u.includes(k))), [], 'no key ever appears in a URL');
  eq(requests.filter((u) => !u.startsWith(URL_) && !u.startsWith('data:')), [], 'every request goes to the service itself (works offline, no CDN)');
  eq(pageErrors, [], 'no uncaught script errors and no Content-Security-Policy violations');
  console.log(`dashboard browser test: all ${checks} checks passed`);
} catch (err) {
  console.error(`FAILED after ${checks} checks: ${err.stack || err}`);
  if (pageErrors.length) console.error(`page errors: ${pageErrors.join('\n')}`);
  await shot('failure').catch(() => {});
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
