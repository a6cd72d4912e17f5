import { subscribe, type RelayEvent, type Subscription } from '../../src/client/index.js';
import { element } from './page.js';
import { ReplayBoundary, type Arrival } from './replay-boundary.js';
import { tokenHeaders } from './token.js';

/** What a card subscribes to: one id of the article's API, or Mercure selectors of one kind. */
export type Selection =
  | { readonly api: 'messages'; readonly id: string }
  | { readonly api: 'mercure'; readonly parameter: 'match' | 'match_urlpattern' | 'topic'; readonly selectors: readonly string[] };

type StreamState = 'connecting' | 'open' | 'reconnecting' | 'closed' | 'error';

/** Rows a card keeps; older ones scroll away, so a busy topic cannot grow the page without bound. */
const MAX_ROWS = 500;

const SELECTOR_NAMES = { match: 'exact', match_urlpattern: 'URL pattern', topic: 'URI template' } as const;

/**
 * The publish time the hub gives a message, when the SDK exposes it (`publishedAt`); hubs and
 * SDK versions without it leave it undefined, and the card shows the receive time instead.
 */
function publishTimeOf(event: RelayEvent): Date | undefined {
  const value = (event as RelayEvent & { publishedAt?: Date | string | number }).publishedAt;
  if (value === undefined) return undefined;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** The hub's position (its last event id) as `/stats` reports it; undefined when unreadable. */
async function hubPosition(origin: string): Promise<string | undefined> {
  try {
    const stats = (await (await fetch(new URL('/stats', origin), { cache: 'no-store' })).json()) as { lastEventId?: unknown };
    return typeof stats.lastEventId === 'string' ? stats.lastEventId : undefined;
  } catch {
    return undefined;
  }
}

function titleOf(selection: Selection): string {
  if (selection.api === 'messages') return `/messages/subscribe/${selection.id}`;
  return `Mercure (${SELECTOR_NAMES[selection.parameter]}): ${selection.selectors.join(', ')}`;
}

function streamUrlOf(selection: Selection, origin: string): string | undefined {
  if (selection.api === 'messages') return undefined;
  const url = new URL('/.well-known/mercure', origin);
  for (const selector of selection.selectors) url.searchParams.append(selection.parameter, selector);
  return url.toString();
}

/**
 * One subscription card: a state badge, the messages as they arrive (each marked replayed or
 * live, with its publish time or, lacking it, its receive time), and buttons to clear the list
 * and to remove the card (which closes its stream).
 */
export function openStreamCard(list: HTMLElement, selection: Selection, from: string, origin: string, onRemoved: () => void): void {
  const title = titleOf(selection);
  const card = element('article', 'stream');
  card.setAttribute('aria-label', `Subscription ${title}`);
  const head = element('div', 'stream-head');
  const name = element('h3', 'stream-title', title);
  const state = element('span', 'state');
  state.setAttribute('role', 'status');
  const clear = element('button', 'secondary', 'Clear');
  clear.type = 'button';
  clear.setAttribute('aria-label', `Clear messages of ${title}`);
  const remove = element('button', 'secondary', 'Remove');
  remove.type = 'button';
  remove.setAttribute('aria-label', `Remove subscription ${title}`);
  // Badge and buttons stay together, beside the title or, on a narrow screen, below it.
  const actions = element('div', 'stream-actions');
  actions.append(state, clear, remove);
  head.append(name, actions);
  const rows = element('ol', 'events');
  rows.setAttribute('aria-live', 'polite');
  const empty = element('p', 'note', 'No messages yet.');
  const showEmpty = (): void => {
    empty.hidden = rows.children.length > 0;
  };
  card.append(head, empty, rows);
  list.prepend(card);

  const setState = (value: StreamState, detail = ''): void => {
    state.className = `state ${value}`;
    state.dataset.state = value;
    state.textContent = detail ? `${value}: ${detail}` : value;
  };
  setState('connecting');

  let boundary = new ReplayBoundary(from !== '');
  const show = (event: RelayEvent): void => {
    const row = element('li', '');
    row.dataset.id = event.id ?? '';
    const published = publishTimeOf(event);
    const time = published ?? new Date();
    const when = element('time', 'meta', `${published ? 'published' : 'received'} ${time.toLocaleTimeString()}`);
    when.dateTime = time.toISOString();
    const arrival = element('span', 'arrival');
    row.append(when, element('span', 'meta', event.id ? `#${event.id}` : '(no id)'), element('span', 'meta', event.event), arrival, element('span', 'data', event.data));
    if (event.id === undefined) {
      // The hub's notices (`gap`) are neither history nor live messages.
      row.classList.add('notice');
    } else {
      boundary.classify(event.id, (kind: Arrival) => {
        row.dataset.arrival = kind;
        arrival.className = `arrival ${kind}`;
        arrival.textContent = kind;
      });
    }
    rows.append(row);
    showEmpty();
    if (rows.children.length > MAX_ROWS) rows.firstElementChild?.remove();
    rows.scrollTop = rows.scrollHeight;
  };

  const streamUrl = streamUrlOf(selection, origin);
  const subscription: Subscription = subscribe({
    url: origin,
    id: selection.api === 'messages' ? selection.id : selection.selectors[0]!,
    ...(streamUrl ? { streamUrl } : {}),
    headers: tokenHeaders,
    ...(from ? { lastEventId: from } : {}),
    onOpen: ({ lastEventId }) => {
      setState('open');
      const resumed = lastEventId !== undefined && lastEventId !== '';
      const current = (boundary = new ReplayBoundary(resumed));
      if (resumed) void hubPosition(origin).then((position) => current.settle(position));
    },
    onMessage: show,
    onRetry: (info) => setState('reconnecting', `retry in ${Math.round(info.delayMs / 100) / 10} s`),
    onError: (error) => setState('error', error.message),
  });
  clear.addEventListener('click', () => {
    rows.replaceChildren();
    showEmpty();
  });
  remove.addEventListener('click', () => {
    subscription.close();
    card.remove();
    onRemoved();
  });
}
