/**
 * defaultDisplayLength is how many characters of one untrusted value
 * `displayText` shows by default: room for a long distinguished name, not
 * for a value that would push every row of a table off the screen.
 */
export const defaultDisplayLength = 200;

// C0 and C1 controls and DEL; the line and paragraph separators; the bidi
// embeddings, overrides and isolates and the implicit direction marks; the
// zero-width characters and the byte order mark, which hide text; the
// Unicode tag characters, which hide text too.
const unsafe =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]|\udb40[\udc00-\udc7f]/g;

/**
 * displayText is the one rule by which certgate prints a string it did not
 * write itself (a subject, an id, a reason, a file name) to a terminal or a
 * text log: control characters, bidi controls (U+202A-U+202E,
 * U+2066-U+2069, U+200E/F, U+061C), the line and paragraph separators
 * (U+2028, U+2029) and invisible characters are escaped visibly as `\n`,
 * `\t`, `\x1b` or `\u202e`, so that a value can neither
 * start a forged line, move the cursor, nor reorder what follows it; a value
 * longer than `maxLength` characters (200 by default) is cut, with `…` at the
 * end. The result is one line of plain, left-to-right text.
 */
export function displayText(text: string, maxLength: number = defaultDisplayLength): string {
  let shown = Array.from(text);
  const cut = shown.length > maxLength;
  if (cut) shown = shown.slice(0, Math.max(0, maxLength - 1));
  const escaped = shown.join("").replace(unsafe, escapeOne);
  return cut ? `${escaped}…` : escaped;
}

const named: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escapeOne(c: string): string {
  const short = named[c];
  if (short !== undefined) return short;
  const code = c.codePointAt(0)!;
  if (code <= 0xff) return `\\x${code.toString(16).padStart(2, "0")}`;
  if (code <= 0xffff) return `\\u${code.toString(16).padStart(4, "0")}`;
  return `\\u{${code.toString(16)}}`;
}
