// The pad ledger in-process: its path, its format both ways, damage refused and kept, file modes,
// files that are not ledgers refused unread, and the lock.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { UserError } from '../src/cli/errors.js';
import { FileLock } from '../src/client/ledger-lock.js';
import { formatLedger, LEDGER_HEADER, LEDGER_MAX_BYTES, ledgerPath, parseLedger, readLedger, updateLedger, type Ledger } from '../src/client/ledger.js';
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

  t.end();
});

t.test('a ledger that is not a regular file is refused before anything is locked or created', (t) => {
  const dir = t.testdir({ folder: {} });
  const fifo = join(dir, 'fifo');
  mkfifo(fifo);
  symlinkSync(fifo, join(dir, 'to-fifo'));
  symlinkSync('/dev/zero', join(dir, 'to-zero'));
  const cases: [string, string, RegExp][] = [
    // FIFOs only here, where the pre-check refuses them: a read that waited on one would block this process (test/no-reuse.test.ts runs them with a deadline).
    ['a FIFO', fifo, /^the ledger '.*fifo' is a FIFO, not a regular file$/],
    ['a symlink to a FIFO', join(dir, 'to-fifo'), /^the ledger '.*to-fifo' is a FIFO, not a regular file$/],
    ['a directory', join(dir, 'folder'), /^the ledger '.*folder' is a directory, not a regular file$/],
    ['/dev/zero', '/dev/zero', /^the ledger '\/dev\/zero' is a character device, not a regular file$/],
    ['/dev/full', '/dev/full', /^the ledger '\/dev\/full' is a character device, not a regular file$/],
    ['/dev/null', '/dev/null', /^the ledger '\/dev\/null' is a character device, not a regular file$/],
    ['a symlink to /dev/zero', join(dir, 'to-zero'), /^the ledger '.*to-zero' is a character device, not a regular file$/],
    ['a name under a FIFO', join(fifo, 'ledger'), /^cannot read the ledger '.*fifo\/ledger': not a directory$/],
  ];
  // A file at each lock's name in `dir`: a client that went on to lock would say it is not a lock.
  for (const [, path] of cases) if (dirname(path) === dir) writeFileSync(`${path}.lock`, 'sentinel');
  const before = readdirSync(dir).sort();
  for (const [what, path, why] of cases) {
    let called = false;
    t.throws(() => updateLedger(path, () => (called = true)), why, what);
    t.notOk(called, `${what}: nothing is chosen`);
    if (dirname(path) !== dir) t.notOk(present(`${path}.lock`), `${what}: no lock beside it`);
    t.notOk(present(`${path}.new`), `${what}: no new ledger beside it`);
  }
  t.same(readdirSync(dir).sort(), before, 'nothing was created');
  t.ok(statSync(fifo).isFIFO(), 'the FIFO is left as it was');
  // The read checks what it opened, not only the check before the lock.
  t.throws(() => readLedger(join(dir, 'folder')), /is a directory, not a regular file$/, 'readLedger refuses a directory itself');
  t.throws(() => readLedger('/dev/zero'), /is a character device, not a regular file$/, 'and a device');
  t.end();
});

t.test('a ledger swapped for a FIFO while the client waits for the lock is refused, not waited on', async (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'ledger');
  const lock = `${path}.lock`;
  // Held by this process, alive: updateLedger checks the ledger (there is none) and waits.
  symlinkSync(`${hostname()}:${process.pid}:feed`, lock);
  // Meanwhile a FIFO takes the ledger's name and the lock goes. Eight seconds on, a watchdog
  // leaves a mark and opens the FIFO to write: an open or read waiting on it ends then, and
  // the mark fails the test instead of a hang.
  const mark = join(dir, 'watchdog-fired');
  const script = 'sleep 0.5; mkfifo "$1" && rm "$2"; sleep 8; touch "$3"; : > "$1"';
  const swapper = spawn('sh', ['-c', script, 'sh', path, lock, mark], { stdio: 'ignore', detached: true });
  t.teardown(() => {
    if (swapper.exitCode === null) process.kill(-swapper.pid!, 'SIGKILL');
  });
  let called = false;
  t.throws(() => updateLedger(path, () => (called = true)), /^the ledger '.*ledger' is a FIFO, not a regular file$/, 'the FIFO is refused');
  t.notOk(present(mark), 'at once, not when a writer came');
  t.notOk(called, 'nothing is chosen');
  t.ok(statSync(path).isFIFO(), 'the FIFO is left as it was');
  t.notOk(present(lock), 'the lock is released');
  t.notOk(present(`${path}.new`), 'no new ledger is left');
});

t.test('a ledger larger than any real one is refused, not read', (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'ledger');
  // Sparse: no disk is used.
  closeSync(openSync(path, 'w'));
  truncateSync(path, LEDGER_MAX_BYTES + 1);
  // A client that went on to lock (and read) would say this is not a lock.
  writeFileSync(`${path}.lock`, 'sentinel');
  let called = false;
  const tooLarge = /^the ledger '[^']*' is over 64 MiB, larger than any ledger; move it away \(it is never reset\)$/;
  t.throws(() => updateLedger(path, () => (called = true)), tooLarge, 'one byte over the limit, before locking');
  t.notOk(called, 'nothing is chosen');
  t.equal(readFileSync(`${path}.lock`, 'latin1'), 'sentinel', 'nothing is locked');
  t.equal(statSync(path).size, LEDGER_MAX_BYTES + 1, 'the file is left as it was');
  t.throws(() => readLedger(path), tooLarge, 'readLedger refuses it itself');
  truncateSync(path, LEDGER_MAX_BYTES);
  t.throws(() => readLedger(path), /damaged at line 1/, 'at the limit it is read (and is no ledger)');
  // A file in /proc says it is empty and has no end: the read stops at the limit, whatever the size said.
  const pagemap = '/proc/self/pagemap';
  t.throws(() => readLedger(pagemap), tooLarge, 'a file larger than its size says', { skip: existsSync(pagemap) ? false : `no ${pagemap} here` });
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

t.test('a new ledger\'s name taken by a directory is named in the error', (t) => {
  const dir = t.testdir({ 'ledger.new': {} });
  const path = join(dir, 'ledger');
  t.throws(() => updateLedger(path, (ledger) => ledger.set(ID, [{ start: 0, end: 1 }])), /^cannot write the ledger '.*ledger': cannot remove '.*ledger\.new': is a directory$/, 'the error names it');
  t.notOk(present(path), 'no ledger is written');
  t.notOk(present(`${path}.lock`), 'the lock is released');
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
