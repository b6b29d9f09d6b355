// A real PostgreSQL for the Node tests of the PostgreSQL spool (issue 14); the
// same as relay/tests/pg_support does for the Rust tests. Debian's package
// (scripts/setup.d/75-postgres.sh): initdb into a fresh temporary directory, a
// free 127.0.0.1 port, its own unix socket directory, fsync=on and
// synchronous_commit=on; `pg_ctl -w start` returns once it accepts connections.
//
// - Run as root (the CI), initdb and pg_ctl run as the `postgres` system user
//   (`runuser -u postgres --`; PostgreSQL refuses root), the directory chowned
//   to it; any other user runs them as itself. The superuser is `postgres`
//   (trust over the unix socket: psql()); clients log in over TCP as the role
//   `postwire` with a password (scram-sha-256): url(db) + password.
// - Nothing is left behind: stop() stops it and removes the directory; on
//   process exit it is stopped too, and a watchdog (`sh` in its own process
//   group, reading a pipe only this process holds) stops it and removes the
//   directory when this process ends in any other way (a crash, SIGKILL).
// - The binaries: $POSTWIRE_PG_BIN if set, else the newest
//   /usr/lib/postgresql/<version>/bin. A missing PostgreSQL is an error, never a skip.
//
//   const pg = await startPg();
//   const url = await pg.createDatabase('spool_a');   // postgres://postwire@127.0.0.1:PORT/spool_a?sslmode=disable
//   env: { POSTWIRE_SPOOL_PASSWORD: pg.password }
//   await pg.restartImmediate();                      // a crash of the database, back on the same port
//   await pg.stop();

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const ROLE = 'postwire';

const RUNUSER = fs.existsSync('/usr/sbin/runuser') ? '/usr/sbin/runuser' : 'runuser';
const PG_ENV_DROP = ['PGDATA', 'PGPORT', 'PGHOST', 'PGUSER', 'PGDATABASE', 'PGOPTIONS', 'PGPASSWORD', 'PGPASSFILE', 'PGSERVICE', 'PGSSLMODE'];

/** $POSTWIRE_PG_BIN, else the newest /usr/lib/postgresql/<version>/bin. */
export function pgBinDir() {
  const env = process.env.POSTWIRE_PG_BIN;
  if (env) {
    if (!fs.existsSync(path.join(env, 'initdb'))) throw new Error(`POSTWIRE_PG_BIN=${env} has no initdb`);
    return env;
  }
  const root = '/usr/lib/postgresql';
  const versions = (fs.existsSync(root) ? fs.readdirSync(root) : [])
    .filter((v) => /^\d+(\.\d+)*$/.test(v) && fs.existsSync(path.join(root, v, 'bin/initdb')))
    .sort((a, b) => {
      const pa = a.split('.').map(Number);
      const pb = b.split('.').map(Number);
      for (let i = 0; i < Math.max(pa.length, pb.length); i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
      return 0;
    });
  if (!versions.length) {
    throw new Error(
      'PostgreSQL not found in /usr/lib/postgresql/<version>/bin: run scripts/setup.sh ' +
        "(it installs Debian's postgresql), or set POSTWIRE_PG_BIN to a directory with initdb, pg_ctl, postgres and psql",
    );
  }
  return path.join(root, versions.at(-1), 'bin');
}

function cleanEnv(extra = {}) {
  const env = { ...process.env };
  for (const k of PG_ENV_DROP) delete env[k];
  return { ...env, ...extra };
}

/** Runs a program; resolves to { code, stdout, stderr } (never rejects on a non-zero exit). */
function run(cmd, args, { input, env, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd, env: env ?? cleanEnv(), stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code: code ?? signal, stdout, stderr }));
    if (input !== undefined) {
      p.stdin.on('error', () => {});
      p.stdin.end(input);
    }
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Whether every directory from / to `dir` lets others through. */
function reachableByAll(dir) {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    try {
      if ((fs.statSync(d).mode & 0o001) === 0) return false;
    } catch {
      return false;
    }
    if (d === path.dirname(d)) return true;
  }
}

/** Starts a PostgreSQL; resolves once it accepts connections and the role `postwire` exists. */
export async function startPg() {
  const bin = pgBinDir();
  const asPostgres = process.geteuid() === 0;
  let base = os.tmpdir();
  if (asPostgres && !reachableByAll(base)) base = '/tmp';
  const dir = fs.mkdtempSync(path.join(base, 'pw-pg-'));
  fs.chmodSync(dir, 0o700);
  if (asPostgres) {
    const r = spawnSync('chown', ['postgres:postgres', dir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`chown postgres ${dir}: ${r.stderr} (is there a postgres user? scripts/setup.sh installs Debian's postgresql)`);
  }
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'pg.log');
  const password = randomBytes(16).toString('hex');
  const tool = (name) => path.join(bin, name);
  // [program, args] as the cluster's owner
  const asOwner = (program, args) => (asPostgres ? [RUNUSER, ['-u', 'postgres', '--', program, ...args]] : [program, args]);
  const owner = (program, args) => {
    const [c, a] = asOwner(program, args);
    return run(c, a, { cwd: dir });
  };
  const readLog = () => {
    try {
      return fs.readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };

  // The watchdog first, so the directory goes even if initdb fails.
  const stopArgs = ['-D', data, '-w', '-m', 'immediate', 'stop'];
  const [wdCmd, wdArgs] = asOwner(tool('pg_ctl'), stopArgs);
  const watchdog = spawn('/bin/sh', ['-c', 'read line; "$@" >/dev/null 2>&1; rm -rf -- "$0"', dir, wdCmd, ...wdArgs], {
    cwd: '/',
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
    env: cleanEnv(),
  });
  watchdog.stdin.on('error', () => {});
  watchdog.unref();
  watchdog.stdin.unref();
  const watchdogDone = new Promise((resolve) => watchdog.on('exit', resolve));

  let running = false;
  let finished = false;
  // On a normal exit: stop it now (synchronously), the watchdog removes the directory.
  const onExit = () => {
    if (running) {
      const [c, a] = asOwner(tool('pg_ctl'), stopArgs);
      spawnSync(c, a, { cwd: dir, env: cleanEnv(), stdio: 'ignore' });
    }
  };
  process.on('exit', onExit);

  const fail = async (msg) => {
    finished = true;
    process.off('exit', onExit);
    watchdog.ref();
    watchdog.stdin.end();
    await watchdogDone;
    throw new Error(msg);
  };

  const init = await owner(tool('initdb'), [
    '-D', data, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-locale', '--no-instructions',
    // only initdb's own files go unsynced; every COMMIT still waits for its WAL fsync (fsync=on)
    '--no-sync',
  ]);
  if (init.code !== 0) await fail(`initdb failed (${init.code}):\n${init.stdout}${init.stderr}`);
  fs.appendFileSync(
    path.join(data, 'postgresql.conf'),
    `\n# postwire tests (tests/js/support/pg.mjs)\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${dir}'\n` +
      "fsync = on\nsynchronous_commit = on\nfull_page_writes = on\npassword_encryption = 'scram-sha-256'\nmax_connections = 200\nlogging_collector = off\n",
  );
  fs.writeFileSync(path.join(data, 'pg_hba.conf'), 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n');

  let port = 0;
  const pgCtlStart = async () => {
    const r = await owner(tool('pg_ctl'), ['-D', data, '-l', logFile, '-w', '-t', '60', '-o', `-p ${port}`, 'start']);
    return r.code === 0 ? null : `pg_ctl start: ${r.code}\n${r.stdout}${r.stderr}--- ${logFile}\n${readLog()}`;
  };
  const pgCtlStop = async (mode) => {
    const r = await owner(tool('pg_ctl'), ['-D', data, '-w', '-t', '60', '-m', mode, 'stop']);
    if (r.code !== 0) throw new Error(`pg_ctl -m ${mode} stop: ${r.code}\n${r.stderr}\n--- server log\n${readLog()}`);
  };
  // a free port, taken again if another process bound it in between
  for (let tries = 0; ; tries++) {
    port = await freePort();
    const err = await pgCtlStart();
    if (!err) break;
    if (tries >= 4 || !err.includes('could not bind')) await fail(`PostgreSQL did not start (port ${port}):\n${err}`);
  }
  running = true;

  const psqlArgs = ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-f', '-'];
  const sqlResult = (r) => (r.code === 0 ? { ok: true, out: r.stdout.replace(/\n$/, '') } : { ok: false, err: `psql: ${r.code}: ${r.stderr.trim()}` });

  // Serialises the start/stop operations.
  let chain = Promise.resolve();
  const serial = (fn) => {
    const p = chain.then(fn);
    chain = p.catch(() => {});
    return p;
  };

  const pg = {
    port,
    password,
    socketDir: dir,
    dataDir: data,
    /** postgres://postwire@127.0.0.1:PORT/DB?sslmode=disable (the password is `password`). */
    url: (db) => `postgres://${ROLE}@127.0.0.1:${port}/${db}?sslmode=disable`,
    log: readLog,
    /** `sql` in `db` as the superuser over the socket; unaligned tuples-only output (| between columns). Rejects on an error. */
    async psql(db, sql) {
      const r = sqlResult(await run(tool('psql'), [...psqlArgs, '-h', dir, '-p', String(port), '-U', 'postgres', '-d', db], { input: `${sql}\n`, env: cleanEnv({ PGCONNECT_TIMEOUT: '10' }) }));
      if (!r.ok) throw new Error(`${r.err}\n--- sql\n${sql}\n--- server log\n${readLog()}`);
      return r.out;
    },
    /** `sql` as a client: psql given `url` and PGPASSWORD=`pw`, over TCP. Resolves to { ok, out } or { ok: false, err }. */
    async psqlUrl(url, pw, sql) {
      return sqlResult(await run(tool('psql'), [...psqlArgs, '-d', url], { input: `${sql}\n`, env: cleanEnv({ PGPASSWORD: pw, PGCONNECT_TIMEOUT: '10' }) }));
    },
    /** Creates database `name` (a-z, 0-9, _) owned by `postwire`; resolves to its URL. */
    createDatabase(name) {
      if (!/^[a-z0-9_]{1,63}$/.test(name)) throw new Error(`database name ${JSON.stringify(name)}: use a-z, 0-9 and _`);
      return serial(async () => {
        await pg.psql('postgres', `CREATE DATABASE "${name}" OWNER ${ROLE}`);
        return pg.url(name);
      });
    },
    /** `pg_ctl -m immediate stop` (a crash), then start on the same port; resolves once it accepts connections again. */
    restartImmediate() {
      return serial(async () => {
        if (running) await pgCtlStop('immediate');
        running = false;
        const err = await pgCtlStart();
        if (err) throw new Error(`PostgreSQL did not start again on port ${port}:\n${err}`);
        running = true;
      });
    },
    /** Takes the server down for a while (mode 'fast' or 'immediate'); up() brings it back. */
    down(mode = 'fast') {
      return serial(async () => {
        if (running) await pgCtlStop(mode);
        running = false;
      });
    },
    /** Starts a server taken down() again, same port and data. */
    up() {
      return serial(async () => {
        if (running || finished) return;
        const err = await pgCtlStart();
        if (err) throw new Error(`PostgreSQL did not start again on port ${port}:\n${err}`);
        running = true;
      });
    },
    /** Stops it for good and removes its directory. Idempotent. */
    stop() {
      return serial(async () => {
        if (finished) return;
        finished = true;
        if (running) await pgCtlStop('immediate');
        running = false;
        process.off('exit', onExit);
        watchdog.ref(); // keep the loop alive until the directory is gone
        watchdog.stdin.end();
        await watchdogDone;
      });
    },
  };
  await pg.psql('postgres', `CREATE ROLE ${ROLE} LOGIN PASSWORD '${password}'`);
  return pg;
}
