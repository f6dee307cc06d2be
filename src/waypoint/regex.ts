/**
 * RE2 (the dialect Istio and Envoy use for RegularExpression matches) translated to a JavaScript
 * RegExp that must match the whole input, as Envoy's `safe_regex` does. The overlap of RE2 and
 * JavaScript covers what routes use in practice; the few RE2 spellings JavaScript lacks are
 * translated, and JavaScript-only constructs that RE2 would reject (lookaround, backreferences)
 * are rejected here too, so a route that works in meshd also works in Istio.
 */

const POSIX_CLASSES: Record<string, string> = {
  alpha: 'A-Za-z',
  digit: '0-9',
  alnum: 'A-Za-z0-9',
  upper: 'A-Z',
  lower: 'a-z',
  space: '\\t\\n\\v\\f\\r ',
  xdigit: '0-9A-Fa-f',
  word: 'A-Za-z0-9_',
};

export type CompiledRegex = { ok: true; re: RegExp } | { ok: false; reason: string };

export function compileFullMatchRegex(source: string): CompiledRegex {
  let body = source;
  let flags = '';
  const inline = /^\(\?([imsU]+)\)/.exec(body);
  if (inline) {
    const f = inline[1] ?? '';
    if (f.includes('U')) return { ok: false, reason: 'the (?U) flag has no JavaScript equivalent' };
    if (f.includes('i')) flags += 'i';
    if (f.includes('s')) flags += 's';
    if (f.includes('m')) flags += 'm';
    body = body.slice(inline[0].length);
  }
  if (/\(\?(=|!|<=|<!)/.test(body))
    return { ok: false, reason: 'RE2 does not support lookaround assertions' };
  if (/\\[1-9]/.test(body)) return { ok: false, reason: 'RE2 does not support backreferences' };
  if (/\(\?[a-zA-Z]/.test(body.replace(/\(\?P?</g, ''))) {
    return { ok: false, reason: 'inline flags are supported only at the start of the expression' };
  }
  body = body
    .replace(/\(\?P</g, '(?<')
    .replace(/\\A/g, '^')
    .replace(/\\z/g, '$')
    .replace(/\[:(\^?)([a-z]+):\]/g, (m: string, neg: string, name: string) => {
      const cls = POSIX_CLASSES[name];
      if (cls === undefined || neg) return m;
      return cls;
    });
  if (/\[:\^?[a-z]+:\]/.test(body)) return { ok: false, reason: 'unsupported POSIX character class' };
  try {
    return { ok: true, re: new RegExp(`^(?:${body})$`, flags) };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
}
