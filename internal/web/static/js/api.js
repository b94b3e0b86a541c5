// The API client. The browser signs in once with an API key, which is
// exchanged for an HttpOnly session cookie (the key is never stored); every
// state-changing call carries the session's CSRF token in X-CSRF-Token. The
// token lives in memory only and is recovered after a reload from
// GET /v1/sessions/current.

let csrf = '';
const listeners = new Set();

// onSignedOut registers fn to run when the server says the session is gone.
export function onSignedOut(fn) { listeners.add(fn); }

// APIError is a failed call in the API's one error shape.
export class APIError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || 'http_error';
    this.details = e.details || {};
  }
}

function headers(method, extra = {}) {
  const hs = { Accept: 'application/json', ...extra };
  if (method !== 'GET' && method !== 'HEAD' && csrf) hs['X-CSRF-Token'] = csrf;
  return hs;
}

async function parse(res) {
  if (res.status === 204) return null;
  const text = await res.text();
  if (!text) return null;
  try { return JSON.parse(text); } catch { return { error: { code: 'http_error', message: text.slice(0, 200) } }; }
}

function fail(status, body, path) {
  if (status === 401 && !path.startsWith('/v1/sessions')) for (const fn of listeners) fn();
  throw new APIError(status, body);
}

// api calls method path with a JSON body (unless body is a Blob/File or
// string with opts.type) and returns the parsed JSON answer.
export async function api(method, path, body, opts = {}) {
  const init = { method, credentials: 'same-origin', headers: headers(method), signal: opts.signal };
  if (body !== undefined) {
    const raw = typeof body === 'string' || body instanceof Blob;
    init.headers['Content-Type'] = opts.type || 'application/json';
    init.body = raw ? body : JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const data = await parse(res);
  if (!res.ok) fail(res.status, data, path);
  return data;
}

// signIn exchanges an API key for a session; the answer names the tenant
// and user.
export async function signIn(apiKey) {
  const s = await api('POST', '/v1/sessions', { api_key: apiKey });
  csrf = s.csrf_token;
  return s;
}

// restore returns the current session (after a reload) or null.
export async function restore() {
  try {
    const s = await api('GET', '/v1/sessions/current');
    csrf = s.csrf_token;
    return s;
  } catch (err) {
    if (err.status === 401 || err.status === 404) return null;
    throw err;
  }
}

// signOut revokes the session on the server.
export async function signOut() {
  try { await api('DELETE', '/v1/sessions/current'); } finally { csrf = ''; }
}

// upload sends a file with XMLHttpRequest, the one browser API that reports
// upload progress; onProgress gets a fraction from 0 to 1.
export function upload(path, file, type, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.withCredentials = true;
    for (const [k, v] of Object.entries(headers('POST', { 'Content-Type': type }))) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onerror = () => reject(new APIError(0, { error: { message: 'network error: the upload did not reach the server' } }));
    xhr.onload = () => {
      let data = null;
      try { data = xhr.responseText ? JSON.parse(xhr.responseText) : null; } catch { data = null; }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else { try { fail(xhr.status, data, path); } catch (err) { reject(err); } }
    };
    xhr.send(file);
  });
}

// stream POSTs body asking for Server-Sent Events and calls onEvent(name,
// data) for each event as it arrives. EventSource cannot POST, so the
// response body is read with a stream reader and split on blank lines.
export async function stream(path, body, onEvent, signal) {
  const res = await fetch(path, {
    method: 'POST', credentials: 'same-origin', signal,
    headers: headers('POST', { 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
    body: JSON.stringify(body),
  });
  if (!res.ok) fail(res.status, await parse(res), path);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value.replace(/\r\n/g, '\n');
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      dispatch(buf.slice(0, cut), onEvent);
      buf = buf.slice(cut + 2);
    }
  }
  if (buf.trim()) dispatch(buf, onEvent);
}

// dispatch parses one SSE block ("event:" and "data:" lines; comments,
// like the heartbeat, start with a colon).
function dispatch(block, onEvent) {
  let name = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    if (line.startsWith('event:')) name = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (data.length) onEvent(name, JSON.parse(data.join('\n')));
}
