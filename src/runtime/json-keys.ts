/**
 * Duplicate object keys in JSON text. JSON.parse keeps the last of two equal keys without a
 * word, while other parsers keep the first or refuse: a record like {"amount":1,"amount":1e6}
 * means different things to different consumers, which is how such records are abused. The
 * runtime refuses them.
 *
 * Cheap on the hot path: a parsed value with duplicates has fewer members than the text has
 * key tokens, so the check first counts the text's colons outside strings (every structural
 * colon separates a key from its value) with native indexOf jumps, and compares that with the
 * members of the parsed value. Only when the two differ does the exact scanner run, to name
 * the key and where it is.
 */

/** The first duplicate key in `text`, as a readable location, or undefined. `parsed` is JSON.parse(text). */
export function duplicateKeyIn(text: string, parsed: unknown): string | undefined {
  if (parsed === null || typeof parsed !== 'object') return undefined;
  if (countKeyTokens(text) === countMembers(parsed)) return undefined;
  return findDuplicateKey(text);
}

/** Colons outside strings: for valid JSON, the number of object members in the text. */
export function countKeyTokens(text: string): number {
  let count = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const quote = text.indexOf('"', i);
    const end = quote === -1 ? n : quote;
    for (let c = text.indexOf(':', i); c !== -1 && c < end; c = text.indexOf(':', c + 1)) count++;
    if (quote === -1) break;
    i = closingQuote(text, quote) + 1;
    if (i === 0) break;
  }
  return count;
}

/** Index of the quote that closes the string opening at `open`, or -1. */
function closingQuote(text: string, open: number): number {
  let q = text.indexOf('"', open + 1);
  while (q !== -1) {
    // A quote preceded by an odd run of backslashes is escaped.
    let b = q - 1;
    while (text.charCodeAt(b) === 0x5c /* \ */) b--;
    if ((q - 1 - b) % 2 === 0) return q;
    q = text.indexOf('"', q + 1);
  }
  return -1;
}

/** Own members of every object in a parsed JSON value. */
export function countMembers(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  let n = 0;
  if (Array.isArray(value)) {
    for (const v of value as unknown[]) if (v !== null && typeof v === 'object') n += countMembers(v);
    return n;
  }
  for (const k in value) {
    n++;
    const v = (value as Record<string, unknown>)[k];
    if (v !== null && typeof v === 'object') n += countMembers(v);
  }
  return n;
}

/**
 * The exact check: walks valid JSON text and returns `"key" at path` for the first key that
 * repeats within one object, comparing keys after unescaping ("a" and "\u0061" are equal).
 */
export function findDuplicateKey(text: string): string | undefined {
  // One frame per open container: the keys seen so far (objects only) and the path to it.
  const stack: Array<{ keys: Set<string> | undefined; path: string; index: number }> = [];
  let pendingKey: string | undefined;
  let i = 0;
  const n = text.length;
  const childPath = (): string => {
    const top = stack[stack.length - 1];
    if (!top) return '';
    if (!top.keys) return `${top.path}[${top.index}]`;
    return top.path === '' ? (pendingKey ?? '') : `${top.path}.${pendingKey ?? ''}`;
  };
  while (i < n) {
    const ch = text.charCodeAt(i);
    if (ch === 0x7b /* { */ || ch === 0x5b /* [ */) {
      stack.push({ keys: ch === 0x7b ? new Set() : undefined, path: childPath(), index: 0 });
      pendingKey = undefined;
      i++;
    } else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) {
      stack.pop();
      i++;
    } else if (ch === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top && !top.keys) top.index++;
      pendingKey = undefined;
      i++;
    } else if (ch === 0x22 /* " */) {
      const close = closingQuote(text, i);
      if (close === -1) return undefined;
      const top = stack[stack.length - 1];
      let j = close + 1;
      while (j < n && isSpace(text.charCodeAt(j))) j++;
      if (top?.keys && text.charCodeAt(j) === 0x3a /* : */) {
        const raw = text.slice(i, close + 1);
        const key = raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        if (top.keys.has(key)) return `${JSON.stringify(key)} in ${top.path === '' ? 'value' : top.path}`;
        top.keys.add(key);
        pendingKey = key;
      }
      i = close + 1;
    } else {
      i++;
    }
  }
  return undefined;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}
