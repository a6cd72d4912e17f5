let cachedSecond = Number.NaN;
/** `toISOString()` of the second `cachedSecond`, without its `000Z`. */
let cachedPrefix = '';

/**
 * `new Date(ms).toISOString()`, with the text up to the milliseconds made once per second: the
 * publish time every message frame carries (`: published …`) is the same second for every
 * message of that second. V8 formats a date with seven `snprintf` calls, about 7k of the ~100k
 * instructions a non-pipelined publish cost on the memory store (`bench/callgrind-publish.ts`);
 * this costs a string concatenation. Throws the same RangeError for a time no Date can hold.
 */
export function isoTime(ms: number): string {
  // A Date keeps whole milliseconds, truncated (TimeClip).
  const time = Math.trunc(ms);
  const second = Math.floor(time / 1000);
  if (second !== cachedSecond) {
    const text = new Date(second * 1000).toISOString();
    // Every ISO string ends with `.sssZ`; the year may be six digits with a sign.
    cachedPrefix = text.slice(0, -4);
    cachedSecond = second;
  }
  const millis = time - second * 1000;
  return `${cachedPrefix}${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`;
}
