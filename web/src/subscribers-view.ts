import { subscribe, type Subscription } from '../../src/client/index.js';
import { TopicMatcherSet, type MatcherType } from '../../src/hub/topic-matcher.js';
import type { HubCapabilities } from './hub-capabilities.js';
import { byId, element } from './page.js';
import { tokenHeaders } from './token.js';

/** Mercure's subscription document, as the API lists it and the events carry it. */
interface SubscriptionDocument {
  readonly id: string;
  readonly match_type: string;
  readonly match: string;
  readonly subscriber: string;
  readonly active?: boolean;
  readonly payload?: unknown;
}

const SUBSCRIPTIONS_PATH = '/.well-known/mercure/subscriptions';
/**
 * Every subscription event, as a URI template: the events' topics are relative, and a relative
 * URL pattern would need the hub's `--public-url`, which a template does not.
 */
const EVENTS_TEMPLATE = `${SUBSCRIPTIONS_PATH}/{type}/{match}/{subscriber}`;
/** An open hub delivers private updates to nobody, subscription events included: its list is re-read this often. */
const OPEN_HUB_REFRESH_MS = 3000;
const MATCH_TYPES: Readonly<Record<string, MatcherType>> = { exact: 'exact', urlpattern: 'urlpattern', uritemplate: 'uritemplate' };

/**
 * Whether a subscription receives `topic`, decided by the hub's own matchers (bundled here),
 * so URL patterns and URI templates match exactly as on the hub. Relative URL patterns resolve
 * against the page's origin (the hub uses `--public-url`, the same behind no proxy).
 */
function receives(document: SubscriptionDocument, topic: string): boolean {
  const type = MATCH_TYPES[document.match_type];
  if (type === undefined) return false;
  try {
    return TopicMatcherSet.compile([{ type, match: document.match }], window.location.origin).test(topic);
  } catch {
    return false;
  }
}

/** Thrown when the hub answers the list with an error: its status and plain-text reason. */
class ListRefused extends Error {
  constructor(readonly status: number, reason: string) {
    super(reason);
  }
}

async function listSubscriptions(origin: string): Promise<{ lastEventID: string; subscriptions: SubscriptionDocument[] }> {
  const answer = await fetch(new URL(SUBSCRIPTIONS_PATH, origin), { headers: tokenHeaders(), cache: 'no-store' });
  if (!answer.ok) throw new ListRefused(answer.status, (await answer.text()).trim());
  return (await answer.json()) as { lastEventID: string; subscriptions: SubscriptionDocument[] };
}

/**
 * "Who is subscribed": the active subscriptions that receive a topic, read through Mercure's
 * subscriptions API, then kept current from the subscription events, followed from the list's
 * cursor so no change between the two is missed. A hub without `--subscriptions` has neither:
 * the view says so.
 */
export function setUpSubscribersView(origin: string, capabilities: Promise<HubCapabilities>): void {
  const status = byId('who-status');
  const list = byId('who-list');
  let stop: () => void = () => undefined;
  // A newer "Show" supersedes a watch still starting (its awaits would otherwise install it late).
  let generation = 0;

  const say = (text: string, tone: '' | 'error' = ''): void => {
    status.textContent = text;
    status.className = `note ${tone}`;
  };

  const watch = async (topic: string): Promise<void> => {
    stop();
    stop = () => undefined;
    const mine = ++generation;
    list.replaceChildren();
    const { subscriptions, usesTokens } = await capabilities;
    if (mine !== generation) return;
    if (!subscriptions) {
      say('This hub does not track subscriptions: start it with --subscriptions to see who is subscribed.');
      return;
    }
    const shown = new Map<string, SubscriptionDocument>();
    const render = (): void => {
      const rows = [...shown.values()].map((document) => {
        const row = element('li', '');
        row.dataset.subscriber = document.subscriber;
        row.append(element('code', 'match', document.match), element('span', 'meta', ` (${document.match_type})`), element('span', 'meta line', document.subscriber));
        if (document.payload !== undefined) row.append(element('span', 'meta line', `payload ${JSON.stringify(document.payload)}`));
        return row;
      });
      list.replaceChildren(...rows);
      const count = rows.length === 1 ? '1 subscription receives' : `${rows.length} subscriptions receive`;
      say(`${count} ${topic}${usesTokens ? ', kept current from the hub’s subscription events.' : `. This hub has no keys, so it delivers its (private) subscription events to nobody: the list is re-read every ${OPEN_HUB_REFRESH_MS / 1000} s.`}`);
    };
    const load = async (): Promise<string | undefined> => {
      try {
        const collection = await listSubscriptions(origin);
        shown.clear();
        for (const document of collection.subscriptions) if (receives(document, topic)) shown.set(document.id, document);
        render();
        return collection.lastEventID;
      } catch (error) {
        if (error instanceof ListRefused && (error.status === 401 || error.status === 403)) {
          say(`The hub refused the list (${error.status} ${error.message}): the token needs a subscribe grant on ${SUBSCRIPTIONS_PATH} and what is under it.`, 'error');
        } else {
          say(`The list could not be read: ${(error as Error).message}`, 'error');
        }
        return undefined;
      }
    };

    const cursor = await load();
    if (cursor === undefined || mine !== generation) return;
    if (!usesTokens) {
      const timer = setInterval(() => void load(), OPEN_HUB_REFRESH_MS);
      stop = () => clearInterval(timer);
      return;
    }
    const events = new URL('/.well-known/mercure', origin);
    events.searchParams.set('topic', EVENTS_TEMPLATE);
    const follower: Subscription = subscribe({
      url: origin,
      streamUrl: events.toString(),
      lastEventId: cursor,
      headers: tokenHeaders,
      onMessage: (event) => {
        if (event.event !== 'mercure') return;
        const document = JSON.parse(event.data) as SubscriptionDocument;
        if (!receives(document, topic)) return;
        if (document.active) shown.set(document.id, document);
        else shown.delete(document.id);
        render();
      },
      onError: (error) => say(`Following the subscription events failed: ${error.message}`, 'error'),
    });
    stop = () => follower.close();
  };

  byId<HTMLFormElement>('who-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const topic = byId<HTMLInputElement>('who-topic').value.trim();
    if (topic) void watch(topic);
  });
}
