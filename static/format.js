// format.js: values as a person reads them (in the browser's locale).

let mtimeFormat;
/** An mtime as a date and time; the text as sent when it cannot be read. */
export function formatMtime(s) {
  if (typeof s !== 'string') return '';
  // Date keeps milliseconds only; trim the microseconds PostgreSQL sends.
  const d = new Date(s.replace(/(\.\d{3})\d+/, '$1').replace(' ', 'T'));
  if (Number.isNaN(d.getTime())) return s;
  mtimeFormat ??= new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  return mtimeFormat.format(d);
}

let numberFormat;
/** "1,234 characters". */
export function lengthText(n) {
  numberFormat ??= new Intl.NumberFormat(undefined);
  return `${numberFormat.format(n)} ${n === 1 ? 'character' : 'characters'}`;
}
