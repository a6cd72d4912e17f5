/**
 * Splits a keep-alive connection's bytes into HTTP/1.1 responses, in order (pipelined requests
 * are answered in order). Bodies are skipped, not kept: the publisher needs only each status.
 * Framing: `Content-Length`, `Transfer-Encoding: chunked`, or none (1xx/204/304: no body).
 * A body delimited by the connection's close is refused: it cannot be told apart from a
 * pipelined answer, and none of the peers sends one to a keep-alive request.
 */
export class HttpResponseSplitter {
  private buffer: Buffer = Buffer.alloc(0);
  // Body being skipped: a known length, or a chunked body read chunk by chunk.
  private bodyRemaining = 0;
  private chunkedBody = false;
  private status = 0;
  private closeAfter = false;

  constructor(private readonly onResponse: (status: number, closeAfter: boolean) => void) {}

  /** Feeds one read; throws on a response it cannot frame. */
  push(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    let offset = 0;
    for (;;) {
      if (this.status === 0) {
        const end = this.buffer.indexOf('\r\n\r\n', offset, 'latin1');
        if (end < 0) break;
        this.parseHead(this.buffer.toString('latin1', offset, end));
        offset = end + 4;
      }
      if (this.chunkedBody) {
        const next = this.skipChunks(offset);
        if (next < 0) break;
        offset = next;
      } else {
        const take = Math.min(this.bodyRemaining, this.buffer.length - offset);
        this.bodyRemaining -= take;
        offset += take;
        if (this.bodyRemaining > 0) break;
      }
      const status = this.status;
      this.status = 0;
      this.chunkedBody = false;
      this.onResponse(status, this.closeAfter);
    }
    this.buffer = offset >= this.buffer.length ? Buffer.alloc(0) : this.buffer.subarray(offset);
  }

  /**
   * Status and framing from a response head. No split or regex per header: this runs once per
   * publish, up to 100,000 times a second, on the load generator's single core.
   */
  private parseHead(head: string): void {
    if (!head.startsWith('HTTP/1.') || head.length < 12) throw new Error(`bad status line ${JSON.stringify(head.slice(0, 40))}`);
    this.status = Number(head.slice(9, 12));
    if (!Number.isInteger(this.status)) throw new Error(`bad status line ${JSON.stringify(head.slice(0, 40))}`);
    const lower = head.toLowerCase();
    this.closeAfter = lower.charCodeAt(7) === 0x30; // HTTP/1.0
    const connection = headerValue(lower, 'connection');
    if (connection !== undefined) this.closeAfter = connection.includes('close') ? true : connection.includes('keep-alive') ? false : this.closeAfter;
    this.chunkedBody = headerValue(lower, 'transfer-encoding')?.includes('chunked') ?? false;
    const length = headerValue(lower, 'content-length');
    const bodiless = this.status < 200 || this.status === 204 || this.status === 304;
    if (this.chunkedBody) this.bodyRemaining = 0;
    else if (length !== undefined && /^\d+$/.test(length)) this.bodyRemaining = Number(length);
    else if (bodiless) this.bodyRemaining = 0;
    else throw new Error(`response ${this.status} has no Content-Length and is not chunked`);
  }

  /**
   * Skips a whole chunked body from `offset`: the offset after it, or -1 while it is incomplete
   * (nothing is consumed then; the next read parses it again, which costs little for the small
   * answers of a publish).
   */
  private skipChunks(offset: number): number {
    let pos = offset;
    for (;;) {
      const lineEnd = this.buffer.indexOf('\r\n', pos, 'latin1');
      if (lineEnd < 0) return -1;
      const size = parseInt(this.buffer.toString('latin1', pos, lineEnd).split(';')[0]!.trim(), 16);
      if (!Number.isFinite(size)) throw new Error('bad chunk size in a response');
      if (size === 0) {
        // Last chunk, then (no trailers from our peers) the final CRLF.
        const final = this.buffer.indexOf('\r\n', lineEnd + 2, 'latin1');
        return final < 0 ? -1 : final + 2;
      }
      pos = lineEnd + 2 + size + 2;
      if (pos > this.buffer.length) return -1;
    }
  }
}

/** The trimmed value of header `name` in a lower-cased head, or undefined. */
function headerValue(lowerHead: string, name: string): string | undefined {
  const at = lowerHead.indexOf(`\r\n${name}:`);
  if (at < 0) return undefined;
  const start = at + name.length + 3;
  const end = lowerHead.indexOf('\r\n', start);
  return lowerHead.slice(start, end < 0 ? undefined : end).trim();
}
