// The dashboard shell: sign-in, navigation between pages (real paths, so a reload or a shared
// link shows the same view), and the page lifecycle (each page may return a cleanup, e.g. to
// stop its live refresh).
import { api, auth, ApiError } from './api.js';
import { fill, failure } from './ui.js';
import * as overview from './pages/overview.js';
import * as messages from './pages/messages.js';
import * as funnels from './pages/funnels.js';
import * as issues from './pages/issues.js';
import * as suppressions from './pages/suppressions.js';
import * as recipient from './pages/recipient.js';

const PAGES = { '/': overview, '/messages': messages, '/funnels': funnels, '/issues': issues, '/suppressions': suppressions, '/recipient': recipient };

const main = document.getElementById('page');
const signInBox = document.getElementById('sign-in');
const signOutButton = document.getElementById('sign-out');
let cleanup = null;
let config = { time_zones: ['UTC'] };

/** What a page gets: the URL's parameters and ways to change them. */
function context() {
  const url = new URL(location.href);
  return {
    config,
    params: url.searchParams,
    /** Replaces the query string (filters are kept in the URL); `push` adds a history entry. */
    setParams(values, { push = false } = {}) {
      const next = new URL(location.href);
      next.search = '';
      for (const [k, v] of Object.entries(values)) {
        for (const one of Array.isArray(v) ? v : [v]) if (one !== undefined && one !== null && one !== '') next.searchParams.append(k, one);
      }
      history[push ? 'pushState' : 'replaceState'](null, '', next.pathname + next.search);
    },
    navigate,
    /** Renders the page again from the current URL (after `setParams`). */
    reload: () => render(),
  };
}

export function navigate(href) {
  history.pushState(null, '', href);
  render();
}

let generation = 0;

async function render() {
  const mine = ++generation;
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === location.pathname) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!auth.key()) return showSignIn();
  signInBox.hidden = true;
  main.hidden = false;
  signOutButton.hidden = false;
  const page = PAGES[location.pathname] || overview;
  document.title = `${page.title} · sendtrace`;
  try {
    const done = (await page.render(main, context())) || null;
    // navigated on while this page was loading: the newer page owns the screen; stop this one
    if (mine !== generation) done?.();
    else cleanup = done;
  } catch (err) {
    if (mine === generation) fill(main, failure(page.title, err));
  }
}

function showSignIn(message) {
  main.hidden = true;
  signOutButton.hidden = true;
  signInBox.hidden = false;
  const error = document.getElementById('sign-in-error');
  error.hidden = !message;
  error.textContent = message || '';
  document.getElementById('api-key').focus();
}

document.getElementById('sign-in-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const input = document.getElementById('api-key');
  auth.signIn(input.value.trim());
  input.value = '';
  try {
    // any endpoint the key can read proves it; stats first, then rows for a messages-only key
    await api('/v1/senders/health', { params: { page_size: 1 } }).catch((err) => {
      if (err instanceof ApiError && err.status === 403) return api('/v1/messages', { params: { page_size: 1 } });
      throw err;
    });
    render();
  } catch (err) {
    auth.signOut();
    showSignIn(err.status === 401 ? 'That key is not valid.' : err.message);
  }
});

signOutButton.addEventListener('click', () => {
  auth.signOut();
  render();
});

window.addEventListener('sendtrace:unauthorized', () => {
  auth.signOut();
  showSignIn('The key was refused; sign in again.');
});

document.getElementById('nav').addEventListener('click', (ev) => {
  const a = ev.target.closest('a');
  if (!a || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
  ev.preventDefault();
  navigate(a.getAttribute('href'));
});

// in-page links (`a[data-nav]`) navigate without a reload
main.addEventListener('click', (ev) => {
  const a = ev.target.closest('a[data-nav]');
  if (!a || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
  ev.preventDefault();
  navigate(a.getAttribute('href'));
});

window.addEventListener('popstate', render);

fetch('/ui/config.json')
  .then((r) => (r.ok ? r.json() : config))
  .then((c) => (config = c))
  .catch(() => {})
  .finally(render);
