import { Command, Option } from 'commander';
import { HUB_URL_VARIABLE, TOKEN_VARIABLE } from '../config/environment.js';
import { redactUrl } from '../config/redact.js';
import { CliUsageError } from './usage-error.js';

/** Where and how `publish` and `subscribe` reach the hub, as commander parses it. */
export interface HubAccessOptions {
  url: string;
  /** A bearer token, e.g. the output of `sse-relay token`. */
  token?: string;
  /** `Name: value` pairs, as given on the command line. */
  header?: string[];
}

/** Where a hub started with `npm start` (or `sse-relay serve`) listens. */
export const DEFAULT_HUB_URL = 'http://127.0.0.1:3000';

/** Adds `--url`, `--token` and `--header` to a client command. */
export function addHubAccessOptions(command: Command): Command {
  return command
    .addOption(new Option('--url <hub>', 'base URL of the hub').env(HUB_URL_VARIABLE).default(DEFAULT_HUB_URL))
    .addOption(new Option('--token <jwt>', 'bearer token sent as `Authorization: Bearer <jwt>` (e.g. from `sse-relay token`)').env(TOKEN_VARIABLE))
    .addOption(new Option('--header <header>', "extra request header, 'Name: value'; repeatable").argParser(collect));
}

/**
 * The checked base URL and request headers. Throws {@link CliUsageError} for a URL that is not
 * http(s) or a header that is not `Name: value`, so no request is ever tried with either.
 */
export function resolveHubAccess(options: HubAccessOptions): ResolvedHubAccess {
  // SSE_RELAY_URL exported but empty means "not set", as the shell usually intends.
  const url = checkUrl(options.url === '' ? DEFAULT_HUB_URL : options.url);
  const headers: Record<string, string> = {};
  for (const header of options.header ?? []) {
    const [name, value] = splitHeader(header);
    headers[name] = value;
  }
  // An empty SSE_RELAY_TOKEN (a variable exported but not set) means no token, not an empty one.
  if (options.token !== undefined && options.token.trim() !== '') {
    const token = options.token.trim().replace(/^Bearer\s+/i, '');
    if (!HEADER_VALUE.test(token)) throw new CliUsageError('--token must be a single line of printable characters');
    headers.Authorization = `Bearer ${token}`;
  }
  const authenticated = Object.keys(headers).some((name) => name.toLowerCase() === 'authorization');
  return { url, headers, authenticated };
}

/** What {@link resolveHubAccess} makes of the options. */
export interface ResolvedHubAccess {
  url: string;
  headers: Record<string, string>;
  /** An `Authorization` header is sent (from --token or --header). */
  authenticated: boolean;
}

// RFC 9110 token characters for a field name; a value of visible characters and inner spaces.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE = /^[\x21-\x7e\x80-\xff](?:[\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?$|^$/;

// Header values are often secrets (`Authorization: Bearer ...`): messages name the header's
// name at most, never its value.
function splitHeader(header: string): [string, string] {
  const colon = header.indexOf(':');
  if (colon < 0) throw new CliUsageError("--header expects 'Name: value' (the given header has no colon)");
  const name = header.slice(0, colon).trim();
  const value = header.slice(colon + 1).trim();
  if (!HEADER_NAME.test(name)) {
    throw new CliUsageError(`--header expects 'Name: value'; ${name === '' ? 'the name is empty' : `${JSON.stringify(name.slice(0, 40))} is not a header name`}`);
  }
  if (!HEADER_VALUE.test(value)) throw new CliUsageError(`--header ${name}: the value must be one line of printable characters`);
  return [name, value];
}

function checkUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CliUsageError(`--url expects the hub's base URL such as http://127.0.0.1:3000, got ${JSON.stringify(redactUrl(text))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliUsageError(`--url must be an http:// or https:// URL, got ${JSON.stringify(redactUrl(text))}`);
  }
  return text;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
