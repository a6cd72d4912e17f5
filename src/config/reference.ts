import { ERROR_CODES } from '../hub/errors.js';
import { OPTION_SPECS } from './options.js';

/** Said of every option whose value may hold a secret (see `OptionSpec.secret`). */
const SECRET_NOTE = ' *Secret: never logged or quoted in errors (of a URL, its credentials).*';

/** The README's option reference, rendered from the schema (`npm run docs` writes it). */
export function renderOptionsReference(): string {
  const rows = OPTION_SPECS.map(
    (s) =>
      `| \`--${s.flag}${s.value ? ` ${s.value}` : ''}\` | \`${s.env}\` | ${s.defaultText ? `\`${s.defaultText}\`` : '(none)'} | ${`${s.description}${s.secret ? SECRET_NOTE : ''}`.replace(/\|/g, '\\|')} |`,
  );
  return ['| flag | environment variable | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/** The README's error reference, rendered from the error table. */
export function renderErrorsReference(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, { status, message }]) => `| \`${code}\` | ${status} | ${message} |`);
  return ['| code | status | meaning |', '|---|---|---|', ...rows].join('\n');
}

/** Replaces the text between `<!-- name:start -->` and `<!-- name:end -->`. */
export function replaceSection(document: string, name: string, content: string): string {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const from = document.indexOf(start);
  const to = document.indexOf(end);
  if (from < 0 || to < from) throw new Error(`section ${name} not found`);
  return `${document.slice(0, from + start.length)}\n${content}\n${document.slice(to)}`;
}
