// parseEml agrees with the native `postwire parse` on every corpus message
// (core's corpus and golden inputs, and our own fixtures).
//
// The npm build leaves out encoding_rs (see docs/perf.md): for messages in
// the multi-byte legacy charsets that only encoding_rs decodes, the decoded
// text may differ from native, and everything else (addresses, ids, dates,
// structure, attachment bytes) must still agree exactly.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { test } from 'node:test';
import { cli, corpusMessages, pkg } from './helpers.mjs';

const { parseEml } = await pkg();
const files = corpusMessages();

// Charsets that mail-parser decodes only with its `full_encoding` feature.
const NEEDS_ENCODING_RS =
  /charset\s*=\s*"?(shift_jis|sjis|iso-2022-jp|euc-jp|gb2312|gbk|gb18030|big5|euc-kr|ks_c_5601-1987|x-gbk|cp936|cp949|windows-31j)|=\?(shift_jis|iso-2022-jp|euc-jp|gb2312|gbk|gb18030|big5|euc-kr)\?/i;

// The text fields whose decoding depends on the charset tables.
function withoutDecodedText(spec) {
  const copy = structuredClone(spec);
  delete copy.subject;
  delete copy.text;
  delete copy.html;
  for (const a of copy.alternates ?? []) delete a.content;
  return copy;
}

test('there are messages to parse', () => {
  assert.ok(files.length >= 2, `found only ${files.length} corpus messages`);
});

for (const file of files) {
  test(`parseEml(${basename(file)}) agrees with postwire parse`, () => {
    const bytes = readFileSync(file);
    const native = JSON.parse(cli(['parse', file]).toString('utf8'));
    const wasm = parseEml(bytes);
    if (NEEDS_ENCODING_RS.test(bytes.toString('latin1'))) {
      assert.deepEqual(withoutDecodedText(wasm), withoutDecodedText(native));
      // Bodies are still there (decoded as far as the built-in tables go).
      assert.equal(wasm.text === undefined, native.text === undefined);
      assert.equal(wasm.html === undefined, native.html === undefined);
    } else {
      assert.deepEqual(wasm, native);
    }
  });
}
