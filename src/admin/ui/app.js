// sio-relay admin page: live stats from /v1/stats/stream, rooms and sockets from
// /v1/rooms and /v1/sockets, pushes through /v1/emit. Every call carries the token the
// user typed (kept in this tab's sessionStorage, never displayed); a 401 asks for it
// again. All text from the relay goes into the page through textContent, never HTML.
'use strict';

const TOKEN_KEY = 'sio-relay-admin-token';
const HISTORY = 60; // points on the chart (a minute at one event per second)
const LIST_EVERY_MS = 2000; // rooms and sockets are fetched at most this often
const MAX_ROWS = 500; // sockets shown at most; the count says how many there are

const $ = (id) => document.getElementById(id);

let token = sessionStorage.getItem(TOKEN_KEY) || '';
let stream = null; // AbortController of the running stats stream
let previous = null; // the last snapshot, for rates
const history = [];
let listsAt = 0;
let listsBusy = false;

class Unauthorized extends Error {}

function headers(extra) {
  const all = Object.assign({}, extra);
  if (token) all.Authorization = 'Bearer ' + token;
  return all;
}

// A call to the admin API: the parsed answer, or an Error carrying the relay's code.
async function api(path, options = {}) {
  const res = await fetch(path, Object.assign({}, options, {
    headers: headers(options.headers),
    cache: 'no-store',
  }));
  if (res.status === 401) throw new Unauthorized();
  let body = null;
  try { body = await res.json(); } catch (_) { /* not JSON: reported by status below */ }
  if (!res.ok) {
    const error = body && body.error;
    throw new Error(error ? `${error.code}: ${error.message}` : `HTTP ${res.status}`);
  }
  return body;
}

// ---- token ------------------------------------------------------------------------------

function askToken() {
  if (stream) stream.abort();
  stream = null;
  setStatus('locked', 'token needed');
  const message = $('token-message');
  message.hidden = !token;
  message.textContent = token ? 'That token was refused.' : '';
  token = '';
  sessionStorage.removeItem(TOKEN_KEY);
  // Reachable again if the dialog is dismissed (Escape) without a token.
  $('token-change').hidden = false;
  const dialog = $('token-dialog');
  if (!dialog.open) dialog.showModal();
  $('token-input').focus();
}

$('token-form').addEventListener('submit', () => {
  const input = $('token-input');
  token = input.value.trim();
  input.value = '';
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  $('token-change').hidden = !token;
  start();
});

$('token-change').addEventListener('click', () => {
  token = '';
  askToken();
});

// ---- stats stream -----------------------------------------------------------------------

function setStatus(state, text) {
  const badge = $('status');
  badge.dataset.state = state;
  badge.textContent = text;
}

// Reads Server-Sent Events with fetch, which, unlike EventSource, can send the token.
async function runStream() {
  if (stream) stream.abort();
  const controller = new AbortController();
  stream = controller;
  try {
    const res = await fetch('v1/stats/stream', {
      headers: headers({ Accept: 'text/event-stream' }),
      signal: controller.signal,
      cache: 'no-store',
    });
    if (res.status === 401) { askToken(); return; }
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  } catch (error) {
    if (error instanceof Unauthorized) { askToken(); return; }
  }
  if (stream === controller && !controller.signal.aborted) {
    setStatus('down', 'disconnected, retrying…');
    previous = null;
    setTimeout(() => { if (stream === controller) runStream(); }, 2000);
  }
}

function dispatch(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue; // keep-alive comment
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (event === 'stats' && data.length) onStats(JSON.parse(data.join('\n')));
}

function onStats(snapshot) {
  setStatus(snapshot.ready ? 'live' : 'down', snapshot.ready ? 'live' : 'not ready');
  $('updated').textContent = 'updated ' + new Date(snapshot.time).toLocaleTimeString();
  renderSocketCounts(snapshot.sockets);
  if (previous) {
    const seconds = (Date.parse(snapshot.time) - Date.parse(previous.time)) / 1000;
    if (seconds > 0) {
      const rate = (key) => Math.max(0, snapshot.totals[key] - previous.totals[key]) / seconds;
      const point = { pushes: rate('pushes'), deliveries: rate('deliveries') };
      history.push(point);
      if (history.length > HISTORY) history.shift();
      $('rate-pushes').textContent = format(point.pushes);
      $('rate-deliveries').textContent = format(point.deliveries);
      $('rate-dropped').textContent = format(rate('dropped'));
      $('rate-acks').textContent = format(rate('acks_answered'));
      $('rate-timeouts').textContent = format(rate('acks_timed_out'));
      drawChart();
    }
  }
  previous = snapshot;
  if (Date.now() - listsAt >= LIST_EVERY_MS) refreshLists();
}

function format(n) {
  return n >= 100 ? Math.round(n).toString() : (Math.round(n * 10) / 10).toString();
}

// ---- tables -----------------------------------------------------------------------------

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function fill(table, rows, render) {
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const item of rows) render(body.insertRow(), item);
}

function renderSocketCounts(counts) {
  fill($('sockets-table'), counts, (row, c) => {
    cell(row, c.namespace);
    cell(row, c.transport);
    cell(row, String(c.count), 'num');
  });
  const total = counts.reduce((n, c) => n + c.count, 0);
  $('socket-total').textContent = String(total);
  $('socket-noun').textContent = total === 1 ? 'socket' : 'sockets';
  // Suggest the namespaces seen; patterns (wildcard namespaces) cannot be listed.
  const list = $('namespaces');
  const names = [...new Set(counts.map((c) => c.namespace))].filter((n) => !n.includes('*'));
  const known = [...list.options].map((o) => o.value);
  if (names.join('\n') !== known.join('\n')) {
    list.replaceChildren(...names.map((n) => Object.assign(document.createElement('option'), { value: n })));
  }
}

async function refreshLists() {
  if (listsBusy) return;
  listsBusy = true;
  listsAt = Date.now();
  const namespace = $('namespace').value.trim() || '/';
  const filter = $('socket-filter').value.trim();
  const query = 'namespace=' + encodeURIComponent(namespace);
  const error = $('list-error');
  try {
    const [rooms, sockets] = await Promise.all([
      api('v1/rooms?' + query),
      api('v1/sockets?' + query + (filter ? '&to=' + encodeURIComponent(filter) : '')),
    ]);
    renderRooms(rooms.rooms);
    renderSockets(sockets.sockets);
    error.hidden = true;
  } catch (e) {
    if (e instanceof Unauthorized) { askToken(); return; }
    error.textContent = e.message;
    error.hidden = false;
  } finally {
    listsBusy = false;
  }
}

function target(kind, value) {
  $('emit-kind').value = kind;
  $('emit-target').value = value;
}

function renderRooms(rooms) {
  $('room-count').textContent = `(${rooms.length})`;
  fill($('rooms-table'), rooms, (row, r) => {
    const name = cell(row, r.name, 'pick');
    name.title = 'emit to this room';
    name.addEventListener('click', () => target('room', r.name));
    cell(row, String(r.size), 'num');
  });
}

function renderSockets(sockets) {
  const shown = sockets.slice(0, MAX_ROWS);
  $('socket-count').textContent = sockets.length > MAX_ROWS
    ? `(${MAX_ROWS} of ${sockets.length})` : `(${sockets.length})`;
  // `user` is shown when the relay reports it (sockets accepted with a user).
  const users = sockets.some((s) => 'user' in s);
  for (const th of document.querySelectorAll('.user-col')) th.hidden = !users;
  fill($('socket-list'), shown, (row, s) => {
    const sid = cell(row, s.sid, 'pick mono');
    sid.title = 'emit to this socket';
    sid.addEventListener('click', () => target('sid', s.sid));
    if (users) {
      const user = s.user == null ? '' : String(s.user);
      const td = cell(row, user, user ? 'pick' : '');
      if (user) td.addEventListener('click', () => target('user', user));
    }
    cell(row, s.transport || '');
    cell(row, (s.rooms || []).join(', '));
    cell(row, s.address || '', 'mono');
    cell(row, s.connected_at ? new Date(s.connected_at).toLocaleString() : '');
  });
}

for (const id of ['namespace', 'socket-filter']) {
  $(id).addEventListener('change', refreshLists);
}

// ---- chart ------------------------------------------------------------------------------

function drawChart() {
  const canvas = $('chart');
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const g = canvas.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const styles = getComputedStyle(document.documentElement);
  const top = Math.max(1, ...history.map((p) => Math.max(p.pushes, p.deliveries)));
  const scale = niceCeiling(top);
  const pad = { left: 44, right: 8, top: 8, bottom: 16 };
  const w = width - pad.left - pad.right;
  const h = height - pad.top - pad.bottom;
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = styles.getPropertyValue('--muted');
  g.strokeStyle = styles.getPropertyValue('--grid');
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = pad.top + h - (h * i) / 4;
    g.beginPath(); g.moveTo(pad.left, y); g.lineTo(pad.left + w, y); g.stroke();
    g.fillText(format((scale * i) / 4), 4, y + 4);
  }
  g.fillText(`last ${HISTORY} s`, pad.left, height - 2);
  for (const [key, color] of [['deliveries', '--deliveries'], ['pushes', '--pushes']]) {
    g.strokeStyle = styles.getPropertyValue(color);
    g.lineWidth = 2;
    g.beginPath();
    history.forEach((p, i) => {
      const x = pad.left + w - ((history.length - 1 - i) * w) / (HISTORY - 1);
      const y = pad.top + h - (p[key] / scale) * h;
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
  }
}

function niceCeiling(n) {
  const power = 10 ** Math.floor(Math.log10(n));
  for (const step of [1, 2, 5, 10]) if (step * power >= n) return step * power;
  return 10 * power;
}

// ---- emit -------------------------------------------------------------------------------

$('emit-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const result = $('emit-result');
  result.className = '';
  const kind = $('emit-kind').value;
  const body = {
    namespace: $('namespace').value.trim() || '/',
    event: $('emit-event').value.trim(),
  };
  body[kind === 'user' ? 'user' : 'to'] = $('emit-target').value.trim();
  const data = $('emit-data').value.trim();
  if (data) {
    try {
      body.data = JSON.parse(data);
    } catch (_) {
      result.className = 'error';
      result.textContent = 'Data is not valid JSON.';
      return;
    }
  }
  try {
    const answer = await api('v1/emit', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const n = answer.recipients;
    result.textContent = `Sent to ${n} socket${n === 1 ? '' : 's'}${answer.partial ? ' (some nodes did not answer)' : ''}.`;
  } catch (e) {
    if (e instanceof Unauthorized) { askToken(); return; }
    result.className = 'error';
    result.textContent = e.message;
  }
});

// ---- start ------------------------------------------------------------------------------

function start() {
  setStatus('connecting', 'connecting…');
  previous = null;
  runStream();
  listsAt = 0;
}

window.addEventListener('resize', drawChart);
$('token-change').hidden = !token;
start();
