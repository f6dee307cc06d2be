/**
 * Test support (not used by production code): LocatedObjects from inline YAML, and a manual
 * clock. Lives beside the tests so that they need no fixtures on disk.
 */
import { parseAllDocuments } from 'yaml';
import type { KubeObject, LocatedObject } from '../../config-source/kube.js';
import type { Clock } from '../random.js';

/** Parses a multi-document YAML string into LocatedObjects (file "test.yaml" by default). */
export function locatedObjects(text: string, file = 'test.yaml'): LocatedObject[] {
  const out: LocatedObject[] = [];
  parseAllDocuments(text).forEach((doc, i) => {
    if (doc.errors.length > 0) throw new Error(`${file}: document ${i + 1}: ${doc.errors[0]?.message ?? ''}`);
    const obj = doc.toJS() as KubeObject | null;
    if (obj === null) return;
    const line = doc.range[0] === 0 ? 1 : text.slice(0, doc.range[0]).split('\n').length;
    out.push({ obj, loc: { file, document: i + 1, line } });
  });
  return out;
}

/** A clock the test moves by hand. */
export function manualClock(start = 0): Clock & { advance(ms: number): void; set(ms: number): void } {
  let now = start;
  const clock = (() => now) as Clock & { advance(ms: number): void; set(ms: number): void };
  clock.advance = (ms) => {
    now += ms;
  };
  clock.set = (ms) => {
    now = ms;
  };
  return clock;
}

/** Services used by most config tests, as one YAML string to prepend. */
export const TEST_SERVICES = ['reviews', 'reviews-v1', 'reviews-v2', 'ratings', 'details']
  .map(
    (name) =>
      `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: shop}\nspec: {ports: [{port: 9080}]}`,
  )
  .join('\n---\n');
