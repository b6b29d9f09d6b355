// Repairs a binaryen 108 (Debian bookworm's wasm-opt) bug: when a module has
// two tables (the function table and wasm-bindgen's externref table), the
// binary writer exports `__wbindgen_externrefs` as table 0 (the funcref
// table) instead of the externref table, and the module then fails at
// initialisation ("Table.set(): ... function-typed object must be null").
// This rewrites that one export index in place, and fails loudly on any
// layout it does not understand.
//
//   node scripts/wasm-opt-fixup.mjs FILE.wasm
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.argv[2];
if (!file) throw new Error('usage: wasm-opt-fixup.mjs FILE.wasm');
const buf = readFileSync(file);
const EXPORT_NAME = '__wbindgen_externrefs';

function uleb(pos) {
  let result = 0, shift = 0, byte;
  const start = pos;
  do {
    byte = buf[pos++];
    result += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return { value: result, next: pos, len: pos - start };
}

if (buf.readUInt32LE(0) !== 0x6d736100) throw new Error(`${file}: not a wasm module`);
let pos = 8;
const tableTypes = []; // reftype byte per defined table (imports of tables are not expected)
let exportFix = null;
while (pos < buf.length) {
  const id = buf[pos];
  const size = uleb(pos + 1);
  const body = size.next;
  const end = body + size.value;
  if (id === 2) {
    // import section: an imported table would shift indices; refuse to guess.
    let p = body;
    const count = uleb(p); p = count.next;
    for (let i = 0; i < count.value; i++) {
      for (let k = 0; k < 2; k++) { const n = uleb(p); p = n.next + n.value; }
      const kind = buf[p++];
      if (kind === 1) throw new Error(`${file}: imported tables are not supported by this fixup`);
      if (kind === 0) p = uleb(p).next;
      else if (kind === 2) { const f = buf[p++]; p = uleb(p).next; if (f & 1) p = uleb(p).next; }
      else if (kind === 3) p += 2;
      else if (kind === 4) { p++; p = uleb(p).next; }
      else throw new Error(`${file}: unknown import kind ${kind}`);
    }
  } else if (id === 4) {
    let p = body;
    const count = uleb(p); p = count.next;
    for (let i = 0; i < count.value; i++) {
      tableTypes.push(buf[p++]);
      const flags = buf[p++];
      p = uleb(p).next;
      if (flags & 1) p = uleb(p).next;
    }
  } else if (id === 7) {
    let p = body;
    const count = uleb(p); p = count.next;
    for (let i = 0; i < count.value; i++) {
      const n = uleb(p);
      const name = buf.toString('utf8', n.next, n.next + n.value);
      p = n.next + n.value;
      const kind = buf[p++];
      const idx = uleb(p);
      if (kind === 1 && name === EXPORT_NAME) exportFix = { pos: p, idx };
      p = idx.next;
    }
  }
  pos = end;
}

if (!exportFix) {
  console.error(`wasm-opt-fixup: ${file} exports no ${EXPORT_NAME} table, nothing to do`);
  process.exit(0);
}
const EXTERNREF = 0x6f;
const want = tableTypes.indexOf(EXTERNREF);
if (want < 0 || tableTypes.lastIndexOf(EXTERNREF) !== want) {
  throw new Error(`${file}: expected exactly one externref table, found types ${tableTypes}`);
}
if (exportFix.idx.value === want) {
  console.error(`wasm-opt-fixup: ${EXPORT_NAME} already exports table ${want}`);
} else {
  if (exportFix.idx.len !== 1 || want > 0x7f) throw new Error(`${file}: unexpected index encoding`);
  buf[exportFix.pos] = want;
  writeFileSync(file, buf);
  console.error(`wasm-opt-fixup: ${EXPORT_NAME} now exports table ${want} (was ${exportFix.idx.value})`);
}
// Validate the result with the engine itself.
new WebAssembly.Module(buf);
