/**
 * Reads the `id:` of a stream's first frame when that frame carries no data: the position the
 * hub gives a Mercure stream before its first update. The standard sets the last event id
 * before it discards a frame without data, but eventsource-parser drops such a frame whole, so
 * the SDK reads this one frame itself (a frame with data is left to the parser).
 */
export class LeadingFrame {
  private text = '';
  private finished = false;

  /** Limit on what is buffered while looking for the end of the first frame. */
  private static readonly MAX_CHARS = 64 * 1024;

  /**
   * Feeds the stream's text in order. Returns the first frame's id once that frame is complete,
   * has an `id:` field and no `data:` field; undefined otherwise (and for every later chunk).
   */
  feed(chunk: string): string | undefined {
    if (this.finished) return undefined;
    this.text += chunk;
    // A CR at the end may be the first half of a CRLF: wait for the next chunk.
    const normalised = this.text.replace(/^\uFEFF/, '').replace(/\r\n/g, '\n').replace(/\r(?!$)/g, '\n');
    const end = normalised.startsWith('\n') ? 0 : normalised.indexOf('\n\n');
    if (end < 0) {
      if (this.text.length > LeadingFrame.MAX_CHARS) this.finish();
      return undefined;
    }
    this.finish();
    let id: string | undefined;
    for (const line of normalised.slice(0, end).split('\n')) {
      const colon = line.indexOf(':');
      if (colon === 0) continue;
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(line.charCodeAt(colon + 1) === 0x20 ? colon + 2 : colon + 1);
      if (field === 'data') return undefined;
      if (field === 'id' && !value.includes('\u0000')) id = value;
    }
    return id;
  }

  private finish(): void {
    this.finished = true;
    this.text = '';
  }
}
