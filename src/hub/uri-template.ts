/**
 * Reverse matching of RFC 6570 URI templates: "could this template have expanded to this
 * topic?". Legacy Mercure subscribers (hub 0.x, most deployed Symfony and JavaScript clients)
 * select topics with templates such as `https://example.com/books/{id}`.
 *
 * Hand-written rather than taken from a library: the libraries that extract variables
 * (`uri-templates`, `uri-template-matcher`, ...) compile a template into a JavaScript regular
 * expression whose groups overlap (`{a}{b}`, `{/path*}{.ext}`), and V8's backtracking engine
 * takes time exponential or polynomial in the topic length on such expressions, so a subscriber
 * could make every publish expensive. We only need a yes/no answer, which is a regular-language
 * membership test: the template is compiled into a small NFA and simulated with a set of active
 * states (Thompson's construction). The cost is at most O(topic length x states), with no
 * backtracking, whatever the template.
 *
 * The match is a slight superset of the exact expansion language, like the regular expressions
 * Mercure 0.x derived from templates: prefix modifiers (`{var:3}`) do not bound the length,
 * names in `{;x}`, `{?x}`, `{&x}` expansions are not checked, and `%` is accepted without
 * checking that two hex digits follow. Every expression keeps its exact character class, so
 * `https://example.com/books/{id}` never matches `https://example.com/books/1/admin`.
 */

/** Longest accepted template, in characters. */
export const MAX_URI_TEMPLATE_LENGTH = 1024;

type CharTest = (code: number) => boolean;

interface CharNode {
  readonly kind: 'char';
  readonly test: CharTest;
  next: number;
}
interface SplitNode {
  readonly kind: 'split';
  a: number;
  b: number;
}
interface AcceptNode {
  readonly kind: 'accept';
}
type NfaNode = CharNode | SplitNode | AcceptNode;

/** A fragment under construction: its entry node and the dangling exits to patch. */
interface Fragment {
  readonly start: number;
  readonly exits: { node: number; field: 'next' | 'a' | 'b' }[];
}

// RFC 3986 unreserved characters, plus `%` (pct-encoded) and non-ASCII (IRIs).
const UNRESERVED = charSet('ALPHA DIGIT -._~%');
// RFC 3986 reserved characters: gen-delims and sub-delims.
const RESERVED = charSet(":/?#[]@!$&'()*+,;=");

function charSet(spec: string): Uint8Array {
  const set = new Uint8Array(128);
  const literal = spec.replace('ALPHA', '').replace('DIGIT', '').replace(/\s/g, '');
  if (spec.includes('ALPHA')) for (let c = 65; c <= 90; c++) set[c] = set[c + 32] = 1;
  if (spec.includes('DIGIT')) for (let c = 48; c <= 57; c++) set[c] = 1;
  for (const ch of literal) set[ch.charCodeAt(0)] = 1;
  return set;
}

function classOf(extra: string, reserved: boolean): CharTest {
  const set = new Uint8Array(128);
  for (let c = 0; c < 128; c++) set[c] = UNRESERVED[c]! | (reserved ? RESERVED[c]! : 0);
  for (const ch of extra) set[ch.charCodeAt(0)] = 1;
  return (code) => (code >= 128 ? true : set[code] === 1);
}

const OPERATORS = '+#./;?&';
const VARNAME = /^(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})(?:\.?(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2}))*$/;
const VARSPEC = /^(.+?)(?::([1-9][0-9]{0,3})|(\*))?$/;

/** A compiled template; `matches` runs in time linear in the topic length. */
export class UriTemplate {
  // Scratch space of `matches`, allocated once per template.
  private readonly seen: Uint32Array;
  private generation = 0;
  private readonly listA: number[] = [];
  private readonly listB: number[] = [];
  private readonly stack: number[] = [];

  private constructor(
    readonly source: string,
    private readonly nodes: readonly NfaNode[],
    private readonly start: number,
  ) {
    this.seen = new Uint32Array(nodes.length);
  }

  /**
   * Compiles `template`, or returns undefined when it is not a valid RFC 6570 template with at
   * least one expression (callers then treat the selector as an exact topic, as Mercure 0.x did).
   */
  static parse(template: string): UriTemplate | undefined {
    if (template.length > MAX_URI_TEMPLATE_LENGTH || !template.includes('{')) return undefined;
    const builder = new NfaBuilder();
    const parts: Fragment[] = [];
    let i = 0;
    while (i < template.length) {
      const ch = template[i]!;
      if (ch === '}') return undefined;
      if (ch !== '{') {
        const code = template.charCodeAt(i);
        parts.push(builder.char((c) => c === code));
        i++;
        continue;
      }
      const end = template.indexOf('}', i + 1);
      if (end < 0) return undefined;
      const fragment = compileExpression(builder, template.slice(i + 1, end));
      if (!fragment) return undefined;
      parts.push(fragment);
      i = end + 1;
    }
    const body = builder.seq(parts);
    const accept = builder.add({ kind: 'accept' });
    builder.patch(body, accept);
    return new UriTemplate(template, builder.nodes, body.start);
  }

  /** True when some expansion of the template equals `topic`. */
  matches(topic: string): boolean {
    const { nodes, seen, stack } = this;
    // Scratch state is kept on the instance and reused: this runs for every message offered to
    // a template subscription, and matching is synchronous, so no call can interleave.
    let current = this.listA;
    let next = this.listB;
    current.length = 0;
    const add = (list: number[], index: number): void => {
      // Epsilon closure with an explicit stack: no recursion, whatever the template's shape.
      stack.length = 0;
      stack.push(index);
      while (stack.length > 0) {
        const i = stack.pop()!;
        if (seen[i] === this.generation) continue;
        seen[i] = this.generation;
        const node = nodes[i]!;
        if (node.kind === 'split') stack.push(node.b, node.a);
        else list.push(i);
      }
    };
    this.nextGeneration();
    add(current, this.start);
    for (let p = 0; p < topic.length; p++) {
      if (current.length === 0) return false;
      const code = topic.charCodeAt(p);
      this.nextGeneration();
      next.length = 0;
      for (const i of current) {
        const node = nodes[i]!;
        if (node.kind === 'char' && node.test(code)) add(next, node.next);
      }
      [current, next] = [next, current];
    }
    return current.some((i) => nodes[i]!.kind === 'accept');
  }

  /** A fresh generation number: marks in `seen` from earlier steps no longer count. */
  private nextGeneration(): void {
    if (++this.generation === 0xffffffff) {
      this.seen.fill(0);
      this.generation = 1;
    }
  }
}

function compileExpression(builder: NfaBuilder, expression: string): Fragment | undefined {
  if (expression.length === 0) return undefined;
  let operator = '';
  let list = expression;
  if (OPERATORS.includes(expression[0]!)) {
    operator = expression[0]!;
    list = expression.slice(1);
  } else if ('=,!@|'.includes(expression[0]!)) {
    return undefined; // reserved for future extensions by RFC 6570
  }
  const specs = list.split(',');
  let explode = false;
  for (const spec of specs) {
    const match = VARSPEC.exec(spec);
    if (!match || !VARNAME.test(match[1]!)) return undefined;
    if (match[3]) explode = true;
  }
  const several = specs.length > 1 || explode;
  // Character class of one expanded value, per operator (RFC 6570, appendix A).
  const named = operator === ';' || operator === '?' || operator === '&';
  const values = classOf(`${several ? ',' : ''}${explode || named ? '=' : ''}${operator === '?' ? '&' : ''}`, operator === '+' || operator === '#');
  const star = (): Fragment => builder.star(builder.char(values));
  switch (operator) {
    case '':
    case '+':
      return star();
    case '#':
      return builder.optional(builder.seq([builder.literal('#'), star()]));
    case '?':
      return builder.optional(builder.seq([builder.literal('?'), star()]));
    default: {
      // `.`, `/`, `;`, `&`: every defined value (or exploded member) is prefixed by the operator.
      const item = builder.seq([builder.literal(operator), star()]);
      return several ? builder.star(item) : builder.optional(item);
    }
  }
}

class NfaBuilder {
  readonly nodes: NfaNode[] = [];

  add(node: NfaNode): number {
    this.nodes.push(node);
    return this.nodes.length - 1;
  }

  char(test: CharTest): Fragment {
    const node = this.add({ kind: 'char', test, next: -1 });
    return { start: node, exits: [{ node, field: 'next' }] };
  }

  literal(ch: string): Fragment {
    const code = ch.charCodeAt(0);
    return this.char((c) => c === code);
  }

  /** Points every dangling exit of `fragment` at `target`. */
  patch(fragment: Fragment, target: number): void {
    for (const { node, field } of fragment.exits) (this.nodes[node] as unknown as Record<string, number>)[field] = target;
  }

  seq(parts: readonly Fragment[]): Fragment {
    if (parts.length === 0) {
      const split = this.add({ kind: 'split', a: -1, b: -1 });
      // An empty sequence: a split whose two branches both continue to what follows.
      return { start: split, exits: [{ node: split, field: 'a' }, { node: split, field: 'b' }] };
    }
    for (let i = 0; i < parts.length - 1; i++) this.patch(parts[i]!, parts[i + 1]!.start);
    return { start: parts[0]!.start, exits: parts[parts.length - 1]!.exits };
  }

  /** Zero or more repetitions of `fragment`. */
  star(fragment: Fragment): Fragment {
    const split = this.add({ kind: 'split', a: fragment.start, b: -1 });
    this.patch(fragment, split);
    return { start: split, exits: [{ node: split, field: 'b' }] };
  }

  /** Zero or one occurrence of `fragment`. */
  optional(fragment: Fragment): Fragment {
    const split = this.add({ kind: 'split', a: fragment.start, b: -1 });
    return { start: split, exits: [...fragment.exits, { node: split, field: 'b' }] };
  }
}
