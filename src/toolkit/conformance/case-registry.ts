/**
 * Every case, in Autobahn's order, and the selection by `--cases`,
 * `--exclude` and `--include` (globs on case ids: `*` is any run of
 * characters, so `6.*` is family 6 and `7.7.*` the valid close codes; `X.*`
 * also matches X itself, so `5.1.*` selects case 5.1; a
 * pattern without `*` also names the group under it: `6.4` is 6.4.1–6.4.4).
 */
import { OPT_IN_FAMILIES, type CaseSpec } from './case-types.js';
import { closeCases } from './cases-close.js';
import { compressionCases } from './cases-compression.js';
import { fragmentationCases } from './cases-fragmentation.js';
import { framingCases, miscCases } from './cases-framing.js';
import { limitCases } from './cases-limits.js';
import { pingCases } from './cases-pings.js';
import { opcodeCases, reservedBitCases } from './cases-reserved.js';
import { utf8Cases } from './cases-utf8.js';

let all: CaseSpec[] | undefined;

export function allCases(): CaseSpec[] {
  all ??= [...framingCases(), ...pingCases(), ...reservedBitCases(), ...opcodeCases(), ...fragmentationCases(), ...utf8Cases(), ...closeCases(), ...limitCases(), ...miscCases(), ...compressionCases()];
  return all;
}

export function matchesPattern(pattern: string, id: string): boolean {
  // `5.1.*` also names 5.1 itself (a case with no sub-cases), as a reader expects.
  if (pattern.endsWith('.*') && id === pattern.slice(0, -2)) return true;
  if (!pattern.includes('*') && !pattern.includes('?')) return id === pattern || id.startsWith(`${pattern}.`);
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return re.test(id);
}

export interface Selection {
  cases: CaseSpec[];
  /** Patterns that match no case at all: a usage error. */
  unknown: string[];
}

/** Families the user may opt into, e.g. "9". */
export const INCLUDABLE = OPT_IN_FAMILIES;

export function selectCases(patterns: readonly string[], exclude: readonly string[], include: readonly string[]): Selection {
  const every = allCases();
  const unknown = [...patterns, ...exclude].filter((p) => !every.some((c) => matchesPattern(p, c.id)));
  const wanted = patterns.length > 0 ? patterns : ['*'];
  const family = (id: string) => id.split('.')[0];
  const cases = every.filter((c) => {
    const f = family(c.id);
    // An opt-in family runs when included, or when a pattern names it by number (`9.1.1`, `9.*`).
    const optedIn = !OPT_IN_FAMILIES.includes(f) || include.includes(f) || patterns.some((p) => p === f || p.startsWith(`${f}.`));
    return optedIn && wanted.some((p) => matchesPattern(p, c.id)) && !exclude.some((p) => matchesPattern(p, c.id));
  });
  return { cases, unknown };
}
