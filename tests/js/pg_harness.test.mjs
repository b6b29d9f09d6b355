// The PostgreSQL of the spool's Node tests (support/pg.mjs) does what they
// rely on: a private server, a database per test owned by the role the relays
// log in as (password over TCP), trust over its socket for checks, an
// immediate (crash) restart that keeps committed rows on the same port, and
// nothing left behind once stopped.
// Run: node --test tests/js/pg_harness.test.mjs

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, test } from 'node:test';

import { startPg } from './support/pg.mjs';

let pg;
after(() => pg?.stop());

test('a private PostgreSQL: password login, socket checks, crash restart, clean stop', async () => {
  pg = await startPg();
  const url = await pg.createDatabase('harness_js');
  assert.equal(url, `postgres://postwire@127.0.0.1:${pg.port}/harness_js?sslmode=disable`);

  const ok = await pg.psqlUrl(url, pg.password, 'SELECT current_user, current_database(); SELECT 1');
  assert.deepEqual(ok, { ok: true, out: 'postwire|harness_js\n1' });
  const bad = await pg.psqlUrl(url, 'wrong', 'SELECT 1');
  assert.equal(bad.ok, false);
  assert.match(bad.err, /password authentication failed/);
  assert.equal(await pg.psql('harness_js', 'SHOW fsync; SHOW synchronous_commit'), 'on\non');

  await pg.psqlUrl(url, pg.password, "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('before the crash')");
  await pg.restartImmediate();
  assert.equal(await pg.psql('harness_js', 'SELECT note FROM kept'), 'before the crash');
  assert.match(pg.log(), /database system was interrupted/);

  const dir = pg.socketDir;
  await pg.stop();
  assert.equal(fs.existsSync(dir), false, 'its directory is removed');
  assert.equal((await pg.psqlUrl(url, pg.password, 'SELECT 1')).ok, false, 'nothing listens any more');
});
