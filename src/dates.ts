/**
 * Wall-clock times as UTC ISO 8601 strings, in UTC arithmetic only, so that the time zone of the
 * machine that runs this never enters (EXIF dates, date bounds in filters).
 */

/**
 * "YYYY-MM-DDTHH:MM:SSZ" ("...SS.sssZ" when `ms` is not 0) of the wall-clock time at `offset`
 * minutes east of UTC (undefined: the wall clock taken as UTC). Undefined when a field is
 * impossible (month 13, 31 April, hour 24) or the year is outside 1000-9999.
 */
export function utcIso(year: number, month: number, day: number, hour: number, minute: number, second: number, offset = 0, ms = 0): string | undefined {
  if (year < 1000 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const at = new Date(0);
  at.setUTCFullYear(year, month - 1, day); // not Date.UTC: it maps years 0-99 to 1900-1999
  at.setUTCHours(hour, minute - offset, second, ms);
  const iso = at.toISOString();
  if (!/^\d{4}-/.test(iso)) return undefined; // shifted past year 9999
  return ms === 0 ? iso.replace('.000Z', 'Z') : iso;
}

function daysIn(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}
