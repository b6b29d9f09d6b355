// parseEml agrees with the native `postwire parse` on every corpus message
// (core's corpus, its real-world faults (issue 13) and golden inputs, and our own fixtures).
//
// The npm build leaves out encoding_rs (see docs/perf.md): messages in the
// legacy multi-byte charsets are decoded by the host's TextDecoder instead,
// and must agree with native exactly all the same.
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

test('there are messages to parse', () => {
  assert.ok(files.length >= 2, `found only ${files.length} corpus messages`);
});

for (const file of files) {
  const bytes = readFileSync(file);
  const legacy = NEEDS_ENCODING_RS.test(bytes.toString('latin1'));
  // Legacy multi-byte charsets: the npm build has no tables of its own and
  // asks the host's TextDecoder (core/src/parse/legacy.rs); the result must
  // still equal the native parse, which decodes them with encoding_rs.
  test(`parseEml(${basename(file)})${legacy ? ' [legacy multi-byte charset, via TextDecoder]' : ''} equals postwire parse exactly`, () => {
    const native = JSON.parse(cli(['parse', file]).toString('utf8'));
    assert.deepEqual(parseEml(bytes), native);
  });
  if (legacy) {
    test(`parseEml(${basename(file)}) [legacy multi-byte charset] has no replacement characters`, () => {
      const spec = parseEml(bytes);
      assert.doesNotMatch(JSON.stringify([spec.from, spec.to, spec.subject, spec.text, spec.html]), /\uFFFD/);
    });
  }
}
