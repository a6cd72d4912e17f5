/**
 * Incremental reader of one SSE response on a raw socket: the HTTP/1.1 response head, then the
 * body in either framing peers use (chunked transfer encoding, or an identity stream that runs
 * until the connection closes), then the event stream itself.
 *
 * It is fed whatever each `read()` returned, so it makes no assumption about where reads end:
 * a head, a chunk-size line, a CRLF, a field name or an event may be split anywhere, and one
 * read may carry many events. Line ends are LF, CR or CRLF (a CRLF may itself be split), as the
 * HTML standard's event-stream grammar allows. Each event is reported once, at its blank line,
 * with the first bytes of its first `data` line (enough for the benchmark header) and whether
 * it carried an `id` field. Comments and events without data are not reported.
 *
 * Hot path: one pass over the bytes, no string and no allocation per event; the caller decodes
 * the data prefix in place.
 */

/** What the reader reports. */
export interface SseReaderHandler {
  /** The response head was read. `chunked`: transfer encoding; otherwise an identity body. */
  onHead(status: number, chunked: boolean): void;
  /** One dispatched event. `data` holds the first `dataLength` bytes of its first data line. */
  onEvent(data: Uint8Array, dataLength: number, hasId: boolean): void;
  /** The stream broke the HTTP or chunk framing; the reader stops. */
  onError(message: string): void;
}

/** Bytes of a data line kept for the caller: the benchmark header needs at most 30. */
export const DATA_PREFIX_BYTES = 32;
const MAX_HEAD_BYTES = 16 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;

// Reader phases (plain numbers: faster to compare than strings in the per-byte loop).
const HEAD = 0;
const CHUNK_SIZE = 1; // hex digits of a chunk size
const CHUNK_EXT = 2; // `;ext` after the size, up to the line end
const CHUNK_DATA = 3;
const CHUNK_DATA_END = 4; // the CRLF after a chunk's data
const IDENTITY = 5;
const DONE = 6; // last chunk seen, or failed

// What the current SSE line is, decided once its field name is complete.
const FIELD_UNKNOWN = 0; // still reading the name
const FIELD_DATA = 1;
const FIELD_ID = 2;
const FIELD_OTHER = 3; // comment, event, retry or unknown: skipped

export class SseReader {
  /** Response status, 0 until the head is read. */
  status = 0;
  chunked = false;
  /** Events reported so far. */
  events = 0;

  private phase = HEAD;
  // Copies of the head's bytes (the read buffer is reused); dropped once the head is parsed.
  private headChunks: Buffer[] = [];
  private headLength = 0;
  private headLineLength = 0;

  private chunkRemaining = 0;
  private chunkSizeDigits = 0;
  private chunkEndSeen = 0; // bytes of the CRLF after chunk data seen so far

  // SSE line state.
  private lastWasCr = false;
  private field = FIELD_UNKNOWN;
  private nameLength = 0;
  private readonly name = new Uint8Array(5); // "data" / "id" plus one byte to tell them apart
  private lineLength = 0;
  private skipSpace = false;
  // Event state.
  private hasData = false;
  private hasId = false;
  private readonly data = new Uint8Array(DATA_PREFIX_BYTES);
  private dataLength = 0;
  private capturingData = false;

  constructor(private readonly handler: SseReaderHandler) {}

  /** Feeds the bytes `bytes[start, end)` of one read. */
  push(bytes: Uint8Array, start = 0, end = bytes.length): void {
    let i = start;
    while (i < end) {
      switch (this.phase) {
        case HEAD:
          i = this.readHead(bytes, i, end);
          break;
        case CHUNK_SIZE:
        case CHUNK_EXT:
          i = this.readChunkSize(bytes, i, end);
          break;
        case CHUNK_DATA: {
          const stop = Math.min(end, i + this.chunkRemaining);
          this.readEvents(bytes, i, stop);
          this.chunkRemaining -= stop - i;
          i = stop;
          if (this.chunkRemaining === 0) {
            this.phase = CHUNK_DATA_END;
            this.chunkEndSeen = 0;
          }
          break;
        }
        case CHUNK_DATA_END: {
          const b = bytes[i++]!;
          if (b === CR && this.chunkEndSeen === 0) {
            this.chunkEndSeen = 1;
          } else if (b === LF) {
            this.phase = CHUNK_SIZE;
            this.chunkRemaining = 0;
            this.chunkSizeDigits = 0;
          } else {
            return this.fail('missing CRLF after chunk data');
          }
          break;
        }
        case IDENTITY:
          this.readEvents(bytes, i, end);
          i = end;
          break;
        default:
          return;
      }
    }
  }

  /** True once the body ended (last chunk) or the framing was broken. */
  get ended(): boolean {
    return this.phase === DONE;
  }

  private fail(message: string): void {
    this.phase = DONE;
    this.handler.onError(message);
  }

  private readHead(bytes: Uint8Array, i: number, end: number): number {
    const start = i;
    while (i < end) {
      const b = bytes[i++]!;
      if (b === LF) {
        if (this.headLineLength === 0) {
          this.headChunks.push(Buffer.from(bytes.subarray(start, i)));
          this.parseHead();
          return i;
        }
        this.headLineLength = 0;
      } else if (b !== CR) {
        this.headLineLength++;
      }
    }
    this.headLength += end - start;
    if (this.headLength > MAX_HEAD_BYTES) {
      this.fail('response head too large');
      return end;
    }
    this.headChunks.push(Buffer.from(bytes.subarray(start, end)));
    return end;
  }

  private parseHead(): void {
    const text = Buffer.concat(this.headChunks).toString('latin1');
    this.headChunks = [];
    const lines = text.split(/\r?\n/);
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (!match) return this.fail(`bad status line: ${JSON.stringify(lines[0])}`);
    this.status = Number(match[1]);
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim().toLowerCase();
      if (name === 'transfer-encoding' && value.split(',').some((v) => v.trim() === 'chunked')) this.chunked = true;
    }
    this.phase = this.chunked ? CHUNK_SIZE : IDENTITY;
    this.handler.onHead(this.status, this.chunked);
  }

  private readChunkSize(bytes: Uint8Array, i: number, end: number): number {
    while (i < end) {
      const b = bytes[i++]!;
      if (b === LF) {
        if (this.chunkSizeDigits === 0) {
          this.fail('empty chunk size');
          return end;
        }
        if (this.chunkRemaining === 0) {
          // The last chunk: the body is over (trailers, if any, are not read).
          this.phase = DONE;
          return end;
        }
        this.phase = CHUNK_DATA;
        return i;
      }
      if (this.phase === CHUNK_EXT || b === CR) continue;
      if (b === 0x3b /* ; */ || b === SPACE || b === 0x09) {
        this.phase = CHUNK_EXT;
        continue;
      }
      const digit = hexValue(b);
      if (digit < 0 || this.chunkSizeDigits >= 8) {
        this.fail('bad chunk size');
        return end;
      }
      this.chunkRemaining = this.chunkRemaining * 16 + digit;
      this.chunkSizeDigits++;
    }
    return i;
  }

  /** The event-stream grammar over body bytes. */
  private readEvents(bytes: Uint8Array, i: number, end: number): void {
    // Next LF and CR at or after the skip point, `end` when none in range; -1: not searched yet.
    let nextLf = -1;
    let nextCr = -1;
    // Searches must stop at `end`: past it lie the chunk framing, or stale bytes of the shared
    // read buffer. A view ending there bounds them (made once per call, only when needed).
    let view: Uint8Array | undefined;
    for (; i < end; i++) {
      const b = bytes[i]!;
      if (b === LF || b === CR) {
        if (b === LF && this.lastWasCr) {
          // The LF of a CRLF whose CR already ended the line.
          this.lastWasCr = false;
          continue;
        }
        this.lastWasCr = b === CR;
        this.endLine();
        continue;
      }
      this.lastWasCr = false;
      this.lineLength++;
      if (this.field === FIELD_UNKNOWN) {
        if (b === COLON) {
          this.decideField();
          this.skipSpace = true;
          continue;
        }
        if (this.nameLength < this.name.length) this.name[this.nameLength] = b;
        this.nameLength++;
        continue;
      }
      if (this.field === FIELD_DATA && this.capturingData) {
        if (this.skipSpace) {
          this.skipSpace = false;
          if (b === SPACE) continue;
        }
        if (this.dataLength < DATA_PREFIX_BYTES) {
          this.data[this.dataLength++] = b;
          continue;
        }
      }
      // Nothing more to keep from this line: jump to its end with the builtin search instead of
      // a JS loop over each byte. Measured here on 120-byte events, per event: JS loop ~430 ns,
      // builtin search ~380 ns (and keeping 32 data bytes instead of 64 saved ~150 ns).
      this.skipSpace = false;
      const from = i + 1;
      view ??= bytes.subarray(0, end);
      if (nextLf < from) {
        const at = indexOf.call(view, LF, from);
        nextLf = at < 0 ? end : at;
      }
      if (nextCr < from) {
        const at = indexOf.call(view, CR, from);
        nextCr = at < 0 ? end : at;
      }
      i = (nextLf < nextCr ? nextLf : nextCr) - 1;
    }
  }

  /** The field name is complete (a colon, or the end of the line). */
  private decideField(): void {
    if (this.nameLength === 0) {
      this.field = FIELD_OTHER; // ':' first: a comment
    } else if (this.nameLength === 4 && this.name[0] === 0x64 && this.name[1] === 0x61 && this.name[2] === 0x74 && this.name[3] === 0x61) {
      this.field = FIELD_DATA;
      // Only the first data line of an event is kept (a multi-line value continues with LF).
      this.capturingData = !this.hasData;
      this.hasData = true;
    } else if (this.nameLength === 2 && this.name[0] === 0x69 && this.name[1] === 0x64) {
      this.field = FIELD_ID;
      this.hasId = true;
    } else {
      this.field = FIELD_OTHER;
    }
  }

  private endLine(): void {
    if (this.lineLength === 0) {
      // A blank line dispatches the event, if it had data.
      if (this.hasData) {
        this.events++;
        this.handler.onEvent(this.data, this.dataLength, this.hasId);
      }
      this.hasData = false;
      this.hasId = false;
      this.dataLength = 0;
    } else if (this.field === FIELD_UNKNOWN) {
      // A line with no colon: the whole line is the field name, the value is empty.
      this.decideField();
    }
    this.field = FIELD_UNKNOWN;
    this.nameLength = 0;
    this.lineLength = 0;
    this.capturingData = false;
    this.skipSpace = false;
  }
}

// The typed-array search (a builtin), not Buffer's (a call into C++ per search).
const indexOf = Uint8Array.prototype.indexOf;

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x61 + 10;
  if (b >= 0x41 && b <= 0x46) return b - 0x41 + 10;
  return -1;
}
