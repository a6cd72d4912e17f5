/**
 * `https://App.example.com/` → `https://app.example.com` (the form browsers send in `Origin`).
 * Text that is not a URL, and the opaque origin `null`, come back unchanged.
 */
export function normaliseOrigin(origin: string): string {
  try {
    const url = new URL(origin);
    return url.origin === 'null' ? origin : url.origin;
  } catch {
    return origin;
  }
}
