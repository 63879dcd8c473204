/**
 * The UTF-8 test table of cases 6.5.x–6.23.x: Markus Kuhn's UTF-8 decoder
 * stress test (https://www.cl.cam.ac.uk/~mgk25/ucs/examples/UTF-8-test.txt),
 * grouped and ordered as Autobahn|Testsuite numbers them, so that 6.N.M here
 * is Autobahn's 6.N.M. Each entry: whether the bytes are valid UTF-8, and the bytes.
 */

export interface Utf8Group {
  title: string;
  sequences: { valid: boolean; bytes: Buffer }[];
}

const h = (hex: string): Buffer => Buffer.from(hex.replace(/\s+/g, ''), 'hex');
const utf8 = new TextDecoder('utf-8', { fatal: true });
function isValid(b: Buffer): boolean {
  try {
    utf8.decode(b);
    return true;
  } catch {
    return false;
  }
}

function group(title: string, valid: boolean, hexes: string[]): Utf8Group {
  return { title, sequences: hexes.map((x) => ({ valid, bytes: h(x) })) };
}

/** κόσμε, the Greek word in Kuhn's test file. */
export const KOSME = h('ceba e1bdb9 cf83 cebc ceb5');

export function utf8Groups(): Utf8Group[] {
  const hello = (mid: string) => Buffer.concat([Buffer.from('hello'), h(mid), Buffer.from('world')]);
  const groups: Utf8Group[] = [];
  groups.push({
    title: 'Some valid UTF-8 sequences',
    sequences: [hello('24'), hello('c2a2'), hello('e282ac'), hello('f0a4ada2'), KOSME].map((bytes) => ({ valid: true, bytes })),
  });
  groups.push({
    title: 'All prefixes of a valid UTF-8 string that contains multi-byte code points',
    sequences: Array.from({ length: KOSME.length }, (_, i) => {
      const bytes = KOSME.subarray(0, i + 1);
      return { valid: isValid(bytes), bytes };
    }),
  });
  groups.push(group('First possible sequence of a certain length', true, ['00', 'c280', 'e0a080', 'f0908080']));
  groups.push(group('First possible sequence length 5/6 (invalid codepoints)', false, ['f888808080', 'fc8480808080']));
  groups.push(group('Last possible sequence of a certain length', true, ['7f', 'dfbf', 'efbfbf', 'f48fbfbf']));
  groups.push(group('Last possible sequence length 4/5/6 (invalid codepoints)', false, ['f7bfbfbf', 'fbbfbfbfbf', 'fdbfbfbfbfbf']));
  groups.push({
    title: 'Other boundary conditions',
    sequences: [
      ...group('', true, ['ed9fbf', 'ee8080', 'efbfbd', 'f48fbfbf']).sequences,
      { valid: false, bytes: h('f4908080') },
    ],
  });
  const run = (from: number, to: number, sep?: number) => {
    const out: number[] = [];
    for (let b = from; b < to; b++) out.push(...(sep === undefined ? [b] : [b, sep]));
    return Buffer.from(out).toString('hex');
  };
  groups.push(group('Unexpected continuation bytes', false, ['80', 'bf', '80bf', '80bf80', '80bf80bf', '80bf80bf80', '80bf80bf80bf', run(0x80, 0xbf)]));
  groups.push(group('Lonely start characters', false, [run(0xc0, 0xdf, 0x20), run(0xe0, 0xef, 0x20), run(0xf0, 0xf7, 0x20), run(0xf8, 0xfb, 0x20), run(0xfc, 0xfd, 0x20)]));
  const missing = ['c0', 'e080', 'f08080', 'f8808080', 'fc80808080', 'df', 'efbf', 'f7bfbf', 'fbbfbfbf', 'fdbfbfbfbf'];
  groups.push(group('Sequences with last continuation byte missing', false, missing));
  groups.push(group('Concatenation of incomplete sequences', false, [missing.join('')]));
  groups.push(group('Impossible bytes', false, ['fe', 'ff', 'fefeffff']));
  groups.push(group('Examples of an overlong ASCII character', false, ['c0af', 'e080af', 'f08080af', 'f8808080af', 'fc80808080af']));
  groups.push(group('Maximum overlong sequences', false, ['c1bf', 'e09fbf', 'f08fbfbf', 'f887bfbfbf', 'fc83bfbfbfbf']));
  groups.push(group('Overlong representation of the NUL character', false, ['c080', 'e08080', 'f0808080', 'f880808080', 'fc8080808080']));
  groups.push(group('Single UTF-16 surrogates', false, ['eda080', 'edadbf', 'edae80', 'edafbf', 'edb080', 'edbe80', 'edbfbf']));
  const highs = ['eda080', 'edadbf', 'edae80', 'edafbf'];
  groups.push(group('Paired UTF-16 surrogates', false, highs.flatMap((hi) => [`${hi}edb080`, `${hi}edbfbf`])));
  const nonChars = ['efbfbe', 'efbfbf'];
  for (const z1 of ['f0', 'f1', 'f2', 'f3', 'f4']) {
    for (const z2 of ['8f', '9f', 'af', 'bf']) {
      if (z1 === 'f4' && z2 !== '8f') continue; // beyond U+10FFFF
      for (const z3 of ['be', 'bf']) {
        const seq = `${z1}${z2}bf${z3}`;
        if (seq !== 'f08fbfbe' && seq !== 'f08fbfbf') nonChars.push(seq); // overlong
      }
    }
  }
  groups.push(group('Non-character code points (valid UTF-8)', true, nonChars));
  groups.push(group('Unicode specials (i.e. replacement char)', true, ['efbfb9', 'efbfba', 'efbfbb', 'efbfbc', 'efbfbd', 'efbfbe', 'efbfbf']));
  return groups;
}
