/**
 * A strict XML well-formedness check for the bench charts (no XML parser is a dependency):
 * one root element, every tag closed in order, attributes quoted and unique, only the five
 * predefined entities or character references, no stray `<` or `&`. Returns the root element's
 * name and the element names seen, or throws with the offset of the first fault.
 */
const NAME = /^[A-Za-z_:][-A-Za-z0-9_:.]*/;
const ENTITY = /^&(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);/;

export function parseXmlShape(text: string): { root: string; elements: string[] } {
  let i = 0;
  const stack: string[] = [];
  const elements: string[] = [];
  let root: string | undefined;
  const fail = (why: string): never => {
    throw new Error(
      `not well-formed XML at offset ${i}: ${why} near ${JSON.stringify(text.slice(i, i + 40))}`,
    );
  };
  const checkText = (s: string, at: number) => {
    for (let k = s.indexOf('&'); k >= 0; k = s.indexOf('&', k + 1)) {
      if (!ENTITY.test(s.slice(k))) {
        i = at + k;
        fail('bad entity');
      }
    }
  };
  if (text.startsWith('<?xml')) {
    const end = text.indexOf('?>');
    if (end < 0) fail('unterminated XML declaration');
    i = end + 2;
  }
  while (i < text.length) {
    const lt = text.indexOf('<', i);
    const chunk = lt < 0 ? text.slice(i) : text.slice(i, lt);
    if (stack.length === 0 && chunk.trim() !== '') fail('text outside the root element');
    checkText(chunk, i);
    if (lt < 0) break;
    i = lt;
    if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i);
      if (end < 0) fail('unterminated comment');
      i = end + 3;
      continue;
    }
    if (text.startsWith('</', i)) {
      const name = NAME.exec(text.slice(i + 2))?.[0] ?? fail('bad closing tag');
      const end = text.indexOf('>', i);
      if (end < 0 || text.slice(i + 2 + name.length, end).trim() !== '') fail('bad closing tag');
      if (stack.pop() !== name) fail(`</${name}> does not close the open element`);
      i = end + 1;
      continue;
    }
    const name = NAME.exec(text.slice(i + 1))?.[0] ?? fail('bad tag name');
    if (stack.length === 0) {
      if (root !== undefined) fail('a second root element');
      root = name;
    }
    elements.push(name);
    i += 1 + name.length;
    const seen = new Set<string>();
    for (;;) {
      const ws = /^\s*/.exec(text.slice(i))?.[0].length ?? 0;
      i += ws;
      if (text.startsWith('/>', i)) {
        i += 2;
        break;
      }
      if (text[i] === '>') {
        stack.push(name);
        i += 1;
        break;
      }
      if (ws === 0) fail('attributes must be separated by white space');
      const attr = NAME.exec(text.slice(i))?.[0] ?? fail('bad attribute name');
      if (seen.has(attr)) fail(`duplicate attribute ${attr}`);
      seen.add(attr);
      i += attr.length;
      const m = /^\s*=\s*("[^"<]*"|'[^'<]*')/.exec(text.slice(i)) ?? fail(`attribute ${attr} is not quoted`);
      checkText(m[1] ?? '', i);
      i += m[0].length;
    }
  }
  if (stack.length > 0) fail(`unclosed <${stack.join('>, <')}>`);
  if (root === undefined) fail('no root element');
  return { root: root as string, elements };
}
