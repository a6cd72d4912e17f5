import { publish } from '../../src/client/index.js';
import type { HubCapabilities } from './hub-capabilities.js';
import { byId } from './page.js';
import { tokenHeaders } from './token.js';

/** Topics typed one per line or comma-separated. */
export function splitList(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

/**
 * Publishes one update through Mercure (`POST /.well-known/mercure`, form-encoded): every topic
 * (the first is canonical), `private` when asked. Resolves with the event id the hub answers
 * with (`text/plain`); rejects with the hub's plain-text error.
 */
async function publishThroughMercure(origin: string, update: { topics: string[]; data: string; type: string; private: boolean }): Promise<string> {
  const body = new URLSearchParams();
  for (const topic of update.topics) body.append('topic', topic);
  body.set('data', update.data);
  if (update.type) body.set('type', update.type);
  if (update.private) body.set('private', 'on');
  const answer = await fetch(new URL('/.well-known/mercure', origin), { method: 'POST', headers: tokenHeaders(), body });
  const text = (await answer.text()).trim();
  if (!answer.ok) throw new Error(`${answer.status} ${text}`);
  return text;
}

/** The publish form: the article's API (one id) or Mercure (several topic URLs, private flag). */
export function setUpPublishPanel(origin: string, capabilities: Promise<HubCapabilities>): void {
  const api = byId<HTMLSelectElement>('publish-api');
  const topicLabel = byId('publish-topic-label');
  const privateRow = byId('publish-private-row');
  const privateBox = byId<HTMLInputElement>('publish-private');
  const note = byId('publish-note');
  const result = byId('publish-result');

  // What the hub will refuse or quietly drop, said before the user presses Publish.
  const explain = async (): Promise<void> => {
    const { usesTokens } = await capabilities;
    const hasToken = byId<HTMLInputElement>('token').value.trim() !== '';
    const isPrivate = api.value === 'mercure' && privateBox.checked;
    let text = '';
    if (usesTokens && !hasToken) text = 'Publishing on this hub needs a token with a publish grant (Authorization above).';
    else if (isPrivate && !usesTokens) text = 'This hub has no keys: a private update reaches no subscriber.';
    note.textContent = text;
    note.hidden = text === '';
  };
  const showApi = (): void => {
    const mercure = api.value === 'mercure';
    topicLabel.textContent = mercure ? 'Topics (one per line: the first is canonical)' : 'Id';
    privateRow.hidden = !mercure;
    void explain();
  };
  api.addEventListener('change', showApi);
  privateBox.addEventListener('change', () => void explain());
  byId('token').addEventListener('input', () => void explain());
  showApi();

  byId<HTMLFormElement>('publish-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const message = byId<HTMLTextAreaElement>('publish-message').value;
    if (byId<HTMLInputElement>('publish-json').checked) {
      try {
        JSON.parse(message);
      } catch (error) {
        result.className = 'error';
        result.textContent = `Not valid JSON: ${(error as Error).message}`;
        return;
      }
    }
    const type = byId<HTMLInputElement>('publish-event').value.trim();
    const topicText = byId<HTMLTextAreaElement>('publish-topic').value;
    try {
      let id: string;
      if (api.value === 'mercure') {
        id = await publishThroughMercure(origin, { topics: splitList(topicText), data: message, type, private: privateBox.checked });
      } else {
        // An id may contain commas: it is taken whole.
        ({ id } = await publish({ url: origin, id: topicText.trim(), message, ...(type ? { event: type } : {}), headers: tokenHeaders() }));
      }
      result.className = '';
      result.textContent = `Published with id ${id}`;
    } catch (error) {
      result.className = 'error';
      result.textContent = `Not published: ${(error as Error).message}`;
    }
  });
}
