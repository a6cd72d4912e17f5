/**
 * The hub's web console: subscribe to ids (article API) or Mercure topic selectors, watch
 * events arrive, publish, and see the hub's live figures. Bundled by esbuild at build time
 * into dist/web; uses the client SDK, so reconnection resumes with Last-Event-ID.
 */
import { publish, subscribe, type RelayEvent, type Subscription } from '../../src/client/index.js';

const origin = window.location.origin;
const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

function authHeaders(): Record<string, string> {
  const token = $<HTMLInputElement>('token').value.trim();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function splitTopics(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
}

type StreamState = 'connecting' | 'open' | 'reconnecting' | 'closed' | 'error';

/** One subscription card: its state badge, its event list, a close button. */
function addStream(api: 'messages' | 'mercure', topics: string[], from: string): void {
  $('no-streams').hidden = true;
  const card = document.createElement('article');
  card.className = 'stream';
  const title = api === 'messages' ? `/messages/subscribe/${topics[0]}` : `Mercure: ${topics.join(', ')}`;
  card.setAttribute('aria-label', `Subscription ${title}`);
  const head = document.createElement('div');
  head.className = 'stream-head';
  const name = document.createElement('h3');
  name.textContent = title;
  name.style.margin = '0';
  name.style.fontSize = '.95rem';
  const state = document.createElement('span');
  state.className = 'state';
  state.setAttribute('role', 'status');
  const close = document.createElement('button');
  close.className = 'secondary';
  close.type = 'button';
  close.textContent = 'Close';
  close.setAttribute('aria-label', `Close subscription ${title}`);
  head.append(name, state, close);
  const list = document.createElement('ol');
  list.className = 'events';
  list.setAttribute('aria-live', 'polite');
  card.append(head, list);
  $('stream-list').prepend(card);

  const setState = (value: StreamState, detail = ''): void => {
    state.className = `state ${value}`;
    state.dataset.state = value;
    state.textContent = detail ? `${value}: ${detail}` : value;
  };
  setState('connecting');

  const show = (event: RelayEvent): void => {
    const item = document.createElement('li');
    if (event.id === undefined) item.className = 'notice';
    item.dataset.id = event.id ?? '';
    const cells = [new Date().toLocaleTimeString(), event.id ? `#${event.id}` : '(no id)', event.event];
    for (const text of cells) {
      const span = document.createElement('span');
      span.className = 'meta';
      span.textContent = text;
      item.append(span);
    }
    const data = document.createElement('span');
    data.className = 'data';
    data.textContent = event.data;
    item.append(data);
    list.append(item);
    if (list.children.length > 500) list.firstElementChild?.remove();
    list.scrollTop = list.scrollHeight;
  };

  let subscription: Subscription;
  const common = {
    url: origin,
    headers: authHeaders,
    ...(from ? { lastEventId: from } : {}),
    onOpen: () => setState('open'),
    onMessage: show,
    onRetry: (info: { delayMs: number }) => setState('reconnecting', `retry in ${Math.round(info.delayMs / 100) / 10} s`),
    onError: (error: Error) => setState('error', error.message),
  };
  if (api === 'messages') {
    subscription = subscribe({ ...common, id: topics[0]! });
  } else {
    const url = new URL('/.well-known/mercure', origin);
    for (const topic of topics) url.searchParams.append('topic', topic);
    subscription = subscribe({ ...common, id: topics[0]!, streamUrl: url.toString() });
  }
  close.addEventListener('click', () => {
    subscription.close();
    setState('closed');
    close.disabled = true;
  });
}

$<HTMLFormElement>('subscribe-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const api = $<HTMLSelectElement>('subscribe-api').value as 'messages' | 'mercure';
  const topics = splitTopics($<HTMLTextAreaElement>('subscribe-topics').value);
  const from = $<HTMLSelectElement>('subscribe-from').value;
  if (topics.length === 0) return;
  if (api === 'messages') for (const topic of topics) addStream('messages', [topic], from);
  else addStream('mercure', topics, from);
});

$<HTMLFormElement>('publish-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const result = $('publish-result');
  const message = $<HTMLTextAreaElement>('publish-message').value;
  if ($<HTMLInputElement>('publish-json').checked) {
    try {
      JSON.parse(message);
    } catch (error) {
      result.className = 'error';
      result.textContent = `Not valid JSON: ${(error as Error).message}`;
      return;
    }
  }
  const type = $<HTMLInputElement>('publish-event').value.trim();
  try {
    const { id } = await publish({
      url: origin,
      id: $<HTMLInputElement>('publish-topic').value,
      message,
      ...(type ? { event: type } : {}),
      headers: authHeaders(),
    });
    result.className = '';
    result.textContent = `Published with id ${id}`;
  } catch (error) {
    result.className = 'error';
    result.textContent = `Not published: ${(error as Error).message}`;
  }
});

let lastPublished: { count: number; at: number } | undefined;
async function refreshFigures(): Promise<void> {
  try {
    const res = await fetch(`${origin}/stats`, { cache: 'no-store' });
    const stats = (await res.json()) as { subscribers: number; published: number; store: string; ready: boolean };
    $('hub-state').textContent = stats.ready ? 'ready' : 'not ready';
    $('stat-subscribers').textContent = String(stats.subscribers);
    $('stat-store').textContent = stats.store;
    const now = performance.now();
    if (lastPublished && stats.published >= lastPublished.count) {
      const rate = (stats.published - lastPublished.count) / ((now - lastPublished.at) / 1000);
      $('stat-rate').textContent = rate.toFixed(rate < 10 ? 1 : 0);
    }
    lastPublished = { count: stats.published, at: now };
  } catch {
    $('hub-state').textContent = 'unreachable';
    lastPublished = undefined;
  }
}
void refreshFigures();
setInterval(() => void refreshFigures(), 2000);
