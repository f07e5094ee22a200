// The pad ledger in-process: its path, its format both ways, damage refused and kept, file modes, and the lock
// (what is not one refused at once).
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { UserError } from '../src/cli/errors.js';
import { FileLock } from '../src/client/ledger-lock.js';
import { formatLedger, LEDGER_HEADER, ledgerPath, parseLedger, readLedger, updateLedger, type Ledger } from '../src/client/ledger.js';
import { normalize } from '../src/client/ranges.js';
import { mkfifo, present } from './helpers/files.js';

const ID = 'a'.repeat(64);
const ID2 = `${'0'.repeat(63)}f`;

/** The pid of a process that has exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

t.test('where the ledger lives', (t) => {
  t.equal(ledgerPath({ OTP_LEDGER: '/x/l', XDG_STATE_HOME: '/s', HOME: '/h' }), '/x/l', '$OTP_LEDGER first');
  t.equal(ledgerPath({ XDG_STATE_HOME: '/s', HOME: '/h' }), '/s/otp/ledger', 'then $XDG_STATE_HOME/otp/ledger');
  t.equal(ledgerPath({ XDG_STATE_HOME: 'relative', HOME: '/h' }), '/h/.local/state/otp/ledger', 'a relative $XDG_STATE_HOME is ignored');
  t.equal(ledgerPath({ HOME: '/h' }), '/h/.local/state/otp/ledger', 'else ~/.local/state/otp/ledger');
  t.end();
});

t.test('any ledger reads back as written', (t) => {
  const ranges = fc
    .array(fc.tuple(fc.nat(1e12), fc.nat(1e6)), { minLength: 1, maxLength: 6 })
    .map((pairs) => normalize(pairs.map(([start, length]) => ({ start, end: start + length + 1 }))));
  const id = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
  fc.assert(
    fc.property(fc.uniqueArray(fc.tuple(id, ranges), { selector: ([k]) => k, maxLength: 5 }), (entries) => {
      const ledger: Ledger = new Map(entries);
      const text = formatLedger(ledger);
      const back = parseLedger(text, 'l');
      return back.size === ledger.size && [...ledger].every(([k, r]) => JSON.stringify(back.get(k)) === JSON.stringify(r)) && formatLedger(back) === text;
    }),
  );
  t.equal(formatLedger(new Map([[ID, [{ start: 120, end: 156 }]]])), `${LEDGER_HEADER}\n${ID} 120-155\n`, 'ranges are written inclusive');
  t.end();
});

t.test('a damaged ledger is refused, naming the line', (t) => {
  const head = `${LEDGER_HEADER}\n`;
  const cases: [string, string, number][] = [
    ['empty file', '', 1],
    ['no header', `${ID} 0-9\n`, 1],
    ['another version', `${LEDGER_HEADER.replace(' 1:', ' 2:')}\n`, 1],
    ['last line cut', `${head}${ID} 0-9`, 2],
    ['short id', `${head}${'a'.repeat(63)} 0-9\n`, 2],
    ['upper-case id', `${head}${'A'.repeat(64)} 0-9\n`, 2],
    ['no ranges', `${head}${ID}\n`, 2],
    ['a range backwards', `${head}${ID} 9-0\n`, 2],
    ['ranges out of order', `${head}${ID} 20-29,0-9\n`, 2],
    ['ranges touching', `${head}${ID} 0-9,10-19\n`, 2],
    ['ranges overlapping', `${head}${ID} 0-9,5-19\n`, 2],
    ['a key twice', `${head}${ID} 0-9\n${ID} 20-29\n`, 3],
    ['a blank line', `${head}${ID} 0-9\n\n`, 3],
    ['a stray byte', `${head}${ID} 0-9\n${ID2} 0-9x\n`, 3],
    ['a number too long', `${head}${ID} 0-1234567890123456\n`, 2],
    ['Windows line ends', `${LEDGER_HEADER}\r\n`, 1],
  ];
  for (const [what, text, line] of cases) {
    t.throws(() => parseLedger(text, '/l'), new RegExp(`^the ledger '/l' is damaged at line ${line}: .*it is never reset\\)$`), what);
  }
  t.end();
});

t.test('updating: directories 0700, file 0600, a failed change or a damaged ledger leaves the file as it was', (t) => {
  const old = process.umask(0o022);
  t.teardown(() => void process.umask(old));
  const dir = t.testdir({});
  const path = join(dir, 'state', 'otp', 'ledger');
  updateLedger(path, (ledger) => ledger.set(ID, [{ start: 0, end: 10 }]));
  t.equal(statSync(path).mode & 0o777, 0o600, 'the ledger is 0600');
  t.equal(statSync(join(dir, 'state', 'otp')).mode & 0o777, 0o700, 'its directory is 0700');
  t.equal(statSync(join(dir, 'state')).mode & 0o777, 0o700, 'and the one above');
  t.same(readLedger(path).get(ID), [{ start: 0, end: 10 }], 'the range is recorded');
  t.notOk(present(`${path}.lock`), 'the lock is gone');

  const before = readFileSync(path, 'latin1');
  t.throws(() => updateLedger(path, () => {
    throw new UserError('no');
  }), /^no$/, 'a change that throws is passed on');
  t.equal(readFileSync(path, 'latin1'), before, 'and the ledger is unchanged');
  t.notOk(present(`${path}.lock`), 'the lock is gone after a failed change too');

  writeFileSync(path, `${before}garbage\n`);
  let called = false;
  t.throws(() => updateLedger(path, () => (called = true)), /damaged at line 3/, 'a damaged ledger is refused');
  t.notOk(called, 'nothing is chosen from a damaged ledger');
  t.equal(readFileSync(path, 'latin1'), `${before}garbage\n`, 'and it is not reset');

  const folder = join(dir, 'folder');
  mkdirSync(folder);
  t.throws(() => readLedger(folder), /^cannot read the ledger '.*folder': is a directory$/, 'an unreadable ledger is an error');
  t.end();
});

t.test('the lock', (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'l.lock');

  const a = new FileLock(path, 'the ledger');
  a.acquire();
  t.ok(lstatSync(path).isSymbolicLink(), 'the lock is a symlink');
  const b = new FileLock(path, 'the ledger');
  t.throws(() => b.acquire(150), new RegExp(`^the ledger is locked by process ${process.pid}; if no enc_client is running, remove '${path}'$`), 'a live holder keeps it');
  b.release();
  t.ok(a.held(), 'releasing a lock one does not hold leaves it alone');
  // A breaker that read a dead holder just before a live process took the lock.
  t.ok(b['_breakDead'](`${hostname()}:${deadPid()}:0`), 'a breaker that comes too late');
  t.ok(a.held(), 'leaves the live lock alone');
  a.release();
  t.notOk(present(path), 'released');
  b.acquire(150);
  t.ok(b.held(), 'then the other can take it');
  b.release();

  symlinkSync(`${hostname()}:${deadPid()}:0`, path);
  const c = new FileLock(path, 'the ledger');
  c.acquire(1000);
  t.ok(c.held(), 'a lock left by a dead process is broken');
  t.notOk(present(`${path}.break`), 'and the breaker lock is gone');
  c.release();

  symlinkSync(`elsewhere.example:${deadPid()}:0`, path);
  t.throws(() => new FileLock(path, 'the ledger').acquire(100), /locked by process \d+ on elsewhere\.example/, 'a holder on another host is not judged');
  unlinkSync(path);

  symlinkSync(`${hostname()}:${deadPid()}:0`, path);
  symlinkSync(`${hostname()}:${deadPid()}:1`, `${path}.break`);
  t.throws(() => new FileLock(path, 'the ledger').acquire(100), new RegExp(`remove '${path}\\.break'$`), 'a breaker that died at work is named');
  t.end();
});

t.test('something at the lock\'s name that is not a lock is refused at once, and left alone', (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'l.lock');
  const odd: [string, () => void, string][] = [
    ['a regular file', () => writeFileSync(path, ''), 'a regular file'],
    ['a directory', () => mkdirSync(path), 'a directory'],
    ['a FIFO', () => mkfifo(path), 'a FIFO'],
    ['a symlink to a device', () => symlinkSync('/dev/zero', path), "a symbolic link to '/dev/zero'"],
  ];
  for (const [what, make, kind] of odd) {
    make();
    const found = lstatSync(path);
    // A lock that only waited for it to go would say 'is locked' after the wait.
    const lock = new FileLock(path, "the ledger 'l'");
    t.throws(() => lock.acquire(500), new RegExp(`^cannot lock the ledger 'l': '${path}' is ${kind.replace(/[/.]/g, '\\$&')}, not a lock; move it away$`), what);
    t.notOk(lock.held(), `${what}: not taken`);
    lock.release();
    t.equal(lstatSync(path).ino, found.ino, `${what}: left as it was`);
    t.notOk(present(`${path}.break`), `${what}: no breaker left`);
    spawnSync('rm', ['-r', path]);
  }
  // `.break` that is no lock, behind a dead lock, in test/no-reuse.test.ts: without the check the wait never ends.
  t.end();
});
