// The dashboard: asks for a token, reads the REST API with it every REFRESH_MS and draws tenants,
// nodes and per-tenant charts. It shows what the API answers for that token and nothing more: a
// tenant token sees its own tenant, and the fleet sections say why they are empty.

import { ApiError, TOKEN_RE, createApi, mapLimited } from './api.js';
import { lineChart } from './chart.js';
import { h, showMessage } from './dom.js';
import {
  allocationSeries,
  allocationTotals,
  formatAgo,
  formatClock,
  formatNumber,
  formatResources,
  latestTraffic,
  trafficSeries,
} from './model.js';

const REFRESH_MS = 10_000;
const STEP_S = 60;
/** Tenants whose stats and allocation are fetched per refresh (the filter picks which). */
const MAX_DETAIL = 50;
const DETAIL_CONCURRENCY = 6;
const STORAGE_KEY = 'switchyard.dashboard.token';
const TOKEN_HELP =
  'An admin or operator token shows every tenant and node; a tenant-admin or tenant-viewer token shows its own tenant. ' +
  'On a control plane started with the quick start, the admin token is in data/admin-token.';

const $ = (id) => document.getElementById(id);
const els = {
  form: $('token-form'),
  input: $('token-input'),
  signOut: $('sign-out'),
  status: $('status-line'),
  authError: $('auth-error'),
  loadError: $('load-error'),
  welcome: $('welcome'),
  dashboard: $('dashboard'),
  fleetNote: $('fleet-note'),
  fleetSummary: $('fleet-summary'),
  filter: $('tenant-filter'),
  tenantsNote: $('tenants-note'),
  tenantsBody: document.querySelector('#tenants-table tbody'),
  nodesNote: $('nodes-note'),
  nodesBody: document.querySelector('#nodes-table tbody'),
  charts: $('chart-grid'),
};

let token = null;
/** Bumped on every sign-in and sign-out, so an answer for an older token is dropped. */
let session = 0;
let timer = null;
let loading = null;
let again = false;

// --- session ----------------------------------------------------------------------------------------

function signIn(value) {
  token = value;
  session++;
  try {
    sessionStorage.setItem(STORAGE_KEY, value);
  } catch {
    /* storage disabled: the token lives in memory until the tab closes */
  }
  els.input.value = '';
  els.input.placeholder = 'token set; paste another to switch';
  els.signOut.hidden = false;
  showMessage(els.authError, '');
  showMessage(els.loadError, '');
  els.welcome.hidden = true;
  refresh();
}

/** Forgets the token; `message` (if any) tells the user why and what to do. */
function signOut(message) {
  token = null;
  session++;
  clearTimeout(timer);
  timer = null;
  again = false;
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    /* nothing stored */
  }
  els.signOut.hidden = true;
  els.input.placeholder = 'paste an admin, operator or tenant token';
  els.dashboard.hidden = true;
  els.welcome.hidden = Boolean(message);
  showMessage(els.loadError, '');
  showMessage(els.authError, message ?? '');
  showMessage(els.status, '');
  els.input.focus();
}

els.form.addEventListener('submit', (event) => {
  event.preventDefault();
  const value = els.input.value.trim();
  if (!TOKEN_RE.test(value)) {
    showMessage(
      els.authError,
      `That is not a Switchyard API token (16–512 letters, digits and _ . ~ + / = -). ${TOKEN_HELP}`,
    );
    return;
  }
  signIn(value);
});
els.signOut.addEventListener('click', () => signOut());
let filterTimer = null;
els.filter.addEventListener('input', () => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(refresh, 250);
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && token) refresh();
});

// --- loading ----------------------------------------------------------------------------------------

/** Loads and draws now; a call while a load runs makes one more load after it. */
function refresh() {
  if (!token) return;
  if (loading) {
    again = true;
    return;
  }
  clearTimeout(timer);
  const mine = session;
  loading = load(createApi(token), filterText())
    .then((snapshot) => {
      if (mine !== session) return;
      showMessage(els.loadError, '');
      render(snapshot);
    })
    .catch((err) => {
      if (mine !== session) return;
      failed(err);
    })
    .finally(() => {
      loading = null;
      if (!token) return;
      // A newer token, or a change asked for meanwhile: load again now for it.
      if (again || mine !== session) {
        again = false;
        refresh();
      } else if (document.visibilityState !== 'hidden') {
        timer = setTimeout(refresh, REFRESH_MS);
      }
    });
}

function failed(err) {
  if (err instanceof ApiError && err.unauthorized) {
    signOut(`The API refused this token (401 ${err.code}): ${err.message}. Enter a valid token. ${TOKEN_HELP}`);
  } else if (err instanceof ApiError && err.forbidden) {
    signOut(`This token may not list tenants (403 ${err.code}): ${err.message}. ${TOKEN_HELP}`);
  } else {
    // Keep what is on screen and keep trying: the control plane may be restarting.
    const message = err instanceof Error ? err.message : String(err);
    showMessage(
      els.loadError,
      `Refresh failed at ${formatClock(Date.now())}: ${message}. Retrying every ${REFRESH_MS / 1000} s.`,
    );
  }
}

/** Reads everything one refresh shows. Throws on 401, or when the tenant list cannot be read. */
async function load(api, filter) {
  // Fleet-wide reads need fleet:read; a tenant-scoped token gets 403, which is an answer, not a failure.
  const fleet = Promise.all([api.list('/v1/nodes'), api.get('/v1/capacity')]).then(
    ([nodes, capacity]) => ({ nodes, capacity, forbidden: null }),
    (err) => {
      if (err instanceof ApiError && err.forbidden) return { nodes: null, capacity: null, forbidden: err };
      throw err;
    },
  );
  fleet.catch(() => {}); // awaited below; avoids an unhandled rejection while the tenants load
  const tenants = await api.list('/v1/tenants');
  const shown = tenants.items.filter((t) => t.id.includes(filter));
  const detailed = shown.slice(0, MAX_DETAIL);
  const details = await mapLimited(detailed, DETAIL_CONCURRENCY, (t) => tenantDetail(api, t.id));
  const refused = details.find((d) => d.error instanceof ApiError && d.error.unauthorized);
  if (refused) throw refused.error;
  return {
    at: Date.now(),
    tenants: tenants.items,
    tenantsTruncated: tenants.truncated,
    shown,
    details: new Map(detailed.map((t, i) => [t.id, details[i]])),
    fleet: await fleet,
  };
}

async function tenantDetail(api, id) {
  const base = `/v1/tenants/${encodeURIComponent(id)}`;
  // The server's clock sets the window (default: the last hour), so a skewed browser clock does not shift it.
  const [stats, allocation] = await Promise.all([
    api.get(`${base}/stats?step=${STEP_S}`),
    api.get(`${base}/allocation?limit=500`),
  ]);
  return { stats, allocation };
}

function filterText() {
  return els.filter.value.trim().toLowerCase();
}

// --- rendering --------------------------------------------------------------------------------------

function render(snap) {
  els.dashboard.hidden = false;
  showMessage(els.status, `Updated ${formatClock(snap.at)}; refreshes every ${REFRESH_MS / 1000} s`);
  renderFleet(snap);
  renderTenants(snap);
  renderNodes(snap);
  renderCharts(snap);
}

function renderFleet(snap) {
  const { capacity, forbidden } = snap.fleet;
  if (forbidden) {
    showMessage(els.fleetNote, `Fleet capacity needs an admin or operator token (403: ${forbidden.message}).`);
    els.fleetSummary.replaceChildren();
    return;
  }
  showMessage(
    els.fleetNote,
    capacity.nodes.length === 0 ? 'No nodes are registered yet: register them with POST /v1/nodes.' : '',
  );
  const sum = (key, dim) =>
    capacity.groups.reduce((acc, g) => (g[key] === null ? acc : (acc ?? 0) + g[key][dim]), null);
  const healthy = capacity.nodes.filter((n) => n.healthy).length;
  const row = (label, dim) => [
    h('dt', {}, label),
    h(
      'dd',
      { 'data-dim': dim },
      `capacity ${formatNumber(sum('capacity', dim))} · reserved ${formatNumber(sum('reserved', dim))} · ` +
        `allocated ${formatNumber(sum('allocated', dim))} · used ${formatNumber(sum('used', dim))}`,
    ),
  ];
  els.fleetSummary.replaceChildren(
    h('dt', {}, 'Nodes'),
    h(
      'dd',
      {},
      `${capacity.nodes.length} (${healthy} healthy) · ${snap.tenants.length} tenants · revision ${capacity.revision}`,
    ),
    ...row('Connections', 'connections'),
    ...row('Requests/s', 'requestsPerSecond'),
  );
}

function renderTenants(snap) {
  const notes = [];
  if (snap.tenantsTruncated) notes.push(`Showing the first ${snap.tenants.length} tenants.`);
  if (snap.shown.length > MAX_DETAIL)
    notes.push(
      `Allocation, usage and charts are loaded for the first ${MAX_DETAIL} tenants shown; filter to see others.`,
    );
  showMessage(els.tenantsNote, notes.join(' '));
  if (snap.shown.length === 0) {
    const text =
      snap.tenants.length === 0 ? 'No tenants yet (or none this token may see).' : 'No tenant matches the filter.';
    els.tenantsBody.replaceChildren(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, text)));
    return;
  }
  els.tenantsBody.replaceChildren(...snap.shown.map((t) => tenantRow(t, snap.details.get(t.id))));
}

function tenantRow(t, detail) {
  const cells = [
    h(
      'th',
      { scope: 'row', 'data-col': 'tenant' },
      h('span', { class: 'id' }, t.id),
      t.displayName && t.displayName !== t.id ? h('span', { class: 'sub' }, t.displayName) : null,
    ),
    h(
      'td',
      { 'data-col': 'state' },
      badge(t.state, stateClass(t.state)),
      t.approval?.pending ? h('span', { class: 'sub' }, 'raise pending approval') : null,
    ),
    h(
      'td',
      { 'data-col': 'reservation' },
      formatResources(t.reservation),
      h('span', { class: 'sub' }, `limit ${formatResources(t.limit)} · weight ${t.weight}`),
    ),
  ];
  if (!detail) {
    cells.push(
      h('td', { 'data-col': 'allocation', class: 'muted' }, '—'),
      h('td', { 'data-col': 'usage', class: 'muted' }, '—'),
    );
  } else if (detail.error) {
    const text = `unavailable: ${detail.error.message}`;
    cells.push(
      h('td', { 'data-col': 'allocation', class: 'muted' }, text),
      h('td', { 'data-col': 'usage', class: 'muted' }, text),
    );
  } else {
    const alloc = allocationTotals(detail.value.allocation.current);
    cells.push(
      h(
        'td',
        { 'data-col': 'allocation' },
        alloc === null
          ? h(
              'span',
              { class: 'muted' },
              t.state === 'active' ? 'none (no node serves it)' : `none (${t.state.replace('_', ' ')})`,
            )
          : [
              `${formatNumber(alloc.connections)} conn · ${formatNumber(alloc.requestsPerSecond)} req/s`,
              h(
                'span',
                { class: 'sub' },
                `${alloc.nodes} node${alloc.nodes === 1 ? '' : 's'} · from ${alloc.sources.join(', ')}`,
              ),
            ],
      ),
    );
    const latest = latestTraffic(trafficSeries(detail.value.stats));
    cells.push(
      h(
        'td',
        { 'data-col': 'usage' },
        latest === null
          ? h('span', { class: 'muted' }, 'no samples in the last hour')
          : [
              `${formatNumber(latest.requestRate)} req/s · ${formatNumber(latest.sessions)} sessions`,
              alloc && alloc.requestsPerSecond > 0
                ? h(
                    'span',
                    { class: 'sub' },
                    `${formatNumber((100 * latest.requestRate) / alloc.requestsPerSecond)}% of req/s cap · at ${formatClock(latest.t)}`,
                  )
                : null,
            ],
      ),
    );
  }
  return h('tr', { 'data-tenant': t.id }, cells);
}

function renderNodes(snap) {
  const { nodes, capacity, forbidden } = snap.fleet;
  if (forbidden) {
    showMessage(
      els.nodesNote,
      `Nodes are visible to admin and operator tokens only; this token may not list them (403: ${forbidden.message}).`,
    );
    els.nodesBody.replaceChildren(
      h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'Not available with this token.')),
    );
    return;
  }
  showMessage(els.nodesNote, nodes.truncated ? `Showing the first ${nodes.items.length} nodes.` : '');
  if (nodes.items.length === 0) {
    els.nodesBody.replaceChildren(h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'No nodes registered.')));
    return;
  }
  const health = new Map(capacity.nodes.map((n) => [n.node, n]));
  els.nodesBody.replaceChildren(...nodes.items.map((n) => nodeRow(n, health.get(n.name), snap.at)));
}

function nodeRow(n, cap, nowMs) {
  const st = n.status;
  const desired = st.desiredRevision;
  const applied = n.appliedRevision;
  const convergence =
    desired === null
      ? badge('no config built', 'neutral')
      : st.converged
        ? badge('converged', 'ok')
        : badge(`behind · waiting for ${st.waitingFor}`, 'warn');
  const heartbeat = n.lastHeartbeatAt
    ? `heartbeat ${formatAgo(Date.parse(n.lastHeartbeatAt), nowMs)}`
    : 'no heartbeat yet';
  const healthCell =
    cap === undefined
      ? [badge('unknown', 'neutral')]
      : cap.healthy
        ? [badge('healthy', 'ok'), h('span', { class: 'sub' }, heartbeat)]
        : [badge('unhealthy', 'bad'), h('span', { class: 'sub' }, cap.unhealthyReason ?? heartbeat)];
  if (n.placementExcluded)
    healthCell.push(
      h(
        'span',
        { class: 'sub' },
        `out of placement since ${formatClock(Date.parse(n.placementExcluded.since))}: ${n.placementExcluded.reason}`,
      ),
    );
  const error = st.lastError ?? st.runtime.error;
  const errorAt = st.lastError ? st.lastErrorAt : null;
  return h(
    'tr',
    { 'data-node': n.name },
    h(
      'th',
      { scope: 'row', 'data-col': 'node' },
      h('span', { class: 'id' }, n.name),
      h('span', { class: 'sub' }, `group ${n.group} · ${formatResources(n.capacity)}`),
    ),
    h('td', { 'data-col': 'kind' }, n.kind, st.proxyVersion ? h('span', { class: 'sub' }, st.proxyVersion) : null),
    h('td', { 'data-col': 'zone' }, n.zone),
    h(
      'td',
      { 'data-col': 'revision' },
      h('span', { class: 'revs' }, `${desired ?? '—'} / ${applied ?? '—'}`),
      convergence,
      st.runtime.revision !== null ? h('span', { class: 'sub' }, `runtime at ${st.runtime.revision}`) : null,
    ),
    h('td', { 'data-col': 'health' }, healthCell),
    h(
      'td',
      { 'data-col': 'last-error', class: error ? 'error-text' : 'muted' },
      error
        ? [
            h('span', { class: 'error-message', title: error }, truncate(error, 400)),
            errorAt ? h('span', { class: 'sub' }, formatClock(Date.parse(errorAt))) : null,
          ]
        : '—',
    ),
  );
}

function renderCharts(snap) {
  const cards = snap.shown.slice(0, MAX_DETAIL).map((t) => chartCard(t, snap.details.get(t.id), snap.at));
  els.charts.replaceChildren(...(cards.length > 0 ? cards : [h('p', { class: 'empty' }, 'No tenants to chart.')]));
}

function chartCard(t, detail, nowMs) {
  const card = h(
    'article',
    { class: 'card', 'data-chart-tenant': t.id },
    h('h3', {}, t.id, ' ', badge(t.state, stateClass(t.state))),
  );
  if (!detail || detail.error) {
    card.append(h('p', { class: 'empty' }, `Charts unavailable: ${detail?.error?.message ?? 'not loaded'}`));
    return card;
  }
  const { stats, allocation } = detail.value;
  const fromMs = Date.parse(stats.from) || nowMs - 3_600_000;
  const toMs = Date.parse(stats.to) || nowMs;
  const traffic = trafficSeries(stats);
  const gapMs = 2.5 * stats.step * 1000;
  const noTraffic =
    'no samples (the stats poller reads nodes with a runtime address: HAProxy Runtime API, NGINX runtime channel)';
  const noCap = t.state === 'active' ? 'no caps (no node serves it)' : `no caps while ${t.state.replace('_', ' ')}`;
  const empty = `No traffic samples and no allocation in the last hour for ${t.id}.`;
  card.append(
    lineChart({
      title: `${t.id}: requests/s`,
      fromMs,
      toMs,
      empty,
      lines: [
        {
          label: 'observed req/s',
          kind: 'observed',
          points: traffic.map((p) => ({ t: p.t, v: p.requestRate })),
          gapMs,
          none: noTraffic,
        },
        {
          label: 'allocated req/s',
          kind: 'cap',
          step: true,
          points: allocationSeries(allocation, 'requestsPerSecond', fromMs, toMs),
          none: noCap,
        },
      ],
    }),
    lineChart({
      title: `${t.id}: connections`,
      fromMs,
      toMs,
      empty,
      lines: [
        {
          label: 'sessions',
          kind: 'observed',
          points: traffic.map((p) => ({ t: p.t, v: p.sessions })),
          gapMs,
          none: noTraffic,
        },
        {
          label: 'allocated connections',
          kind: 'cap',
          step: true,
          points: allocationSeries(allocation, 'connections', fromMs, toMs),
          none: noCap,
        },
      ],
    }),
  );
  return card;
}

function badge(text, cls) {
  return h('span', { class: `badge ${cls}` }, text);
}

function stateClass(state) {
  return state === 'active' ? 'ok' : state === 'suspended' || state === 'rejected' ? 'bad' : 'warn';
}

function truncate(text, max) {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

// --- start ------------------------------------------------------------------------------------------

let stored = null;
try {
  stored = sessionStorage.getItem(STORAGE_KEY);
} catch {
  /* storage disabled */
}
if (stored && TOKEN_RE.test(stored)) signIn(stored);
else els.input.focus();
