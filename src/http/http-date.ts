let dateSecond = -1;
let dateText = '';

/** The `Date` header's value as node:http writes it (`toUTCString`), made once a second. */
export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}
