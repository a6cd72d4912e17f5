/**
 * The hub's web console: subscribe to ids (article API) or Mercure selectors, watch messages
 * arrive (history apart from live ones), publish on either API, see who is subscribed to a
 * topic, and the hub's live figures. Bundled by esbuild at build time into dist/web; uses the
 * client SDK, so reconnection resumes with Last-Event-ID. Served under a strict
 * Content-Security-Policy: no inline script or style, nothing from another origin.
 */
import { readCapabilities } from './hub-capabilities.js';
import { showHubFigures } from './hub-figures.js';
import { byId } from './page.js';
import { setUpPublishPanel, splitList } from './publish-panel.js';
import { openStreamCard, type Selection } from './stream-card.js';
import { setUpSubscribersView } from './subscribers-view.js';

const origin = window.location.origin;
const capabilities = readCapabilities(origin);

const TOPICS_LABELS: Readonly<Record<string, string>> = {
  messages: 'Ids (one per line, or comma-separated)',
  match: 'Topics (one per line)',
  match_urlpattern: 'URL patterns (one per line), e.g. https://example.com/books/:id',
  topic: 'Topics or URI templates (one per line), e.g. https://example.com/books/{id}',
};

const api = byId<HTMLSelectElement>('subscribe-api');
api.addEventListener('change', () => {
  byId('subscribe-topics-label').textContent = TOPICS_LABELS[api.value] ?? '';
});

const streamList = byId('stream-list');
const noStreams = byId('no-streams');
const updateEmptyNote = (): void => {
  noStreams.hidden = streamList.children.length > 0;
};

byId<HTMLFormElement>('subscribe-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const topics = splitList(byId<HTMLTextAreaElement>('subscribe-topics').value);
  const from = byId<HTMLSelectElement>('subscribe-from').value;
  if (topics.length === 0) return;
  const selections: Selection[] =
    api.value === 'messages'
      ? topics.map((id) => ({ api: 'messages', id }))
      : [{ api: 'mercure', parameter: api.value as 'match' | 'match_urlpattern' | 'topic', selectors: topics }];
  for (const selection of selections) openStreamCard(streamList, selection, from, origin, updateEmptyNote);
  updateEmptyNote();
});

void capabilities.then(({ usesTokens }) => {
  byId('auth-note').textContent = usesTokens
    ? 'This hub has keys: publishing, and subscribing unless it allows anonymous subscribers, need a token.'
    : 'This hub has no keys: anyone may publish and subscribe, and tokens are ignored.';
});
setUpPublishPanel(origin, capabilities);
setUpSubscribersView(origin, capabilities);
showHubFigures(origin);
