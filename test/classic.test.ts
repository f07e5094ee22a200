// The classic grading scenario, end to end through the built executables: keygen sizes, a
// key that is too short, encrypt, a client rejected by the wrong server, decrypt, five and
// four clients at once, and a multi-megabyte round trip, checked against a mod-27 model.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { expectStoppedBySignal, FIXTURES, run, startServer, type Result } from './helpers/programs.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ ';

/** The cipher as the spec states it, independently of src/: c = (p + k) mod 27, p = (c - k) mod 27. */
function model(text: string, key: string, direction: 'encrypt' | 'decrypt'): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const p = ALPHABET.indexOf(text[i]);
    const k = ALPHABET.indexOf(key[i]);
    if (p < 0 || k < 0) throw new Error(`model: not a symbol at ${i}`);
    out += ALPHABET[(direction === 'encrypt' ? p + k : p - k + 27) % 27];
  }
  return out;
}

/** A text file's symbols, without its final newline. */
function symbolsOf(file: string): string {
  return readFileSync(file, 'latin1').replace(/\n$/, '');
}

/** stderr is exactly one line, starts with the program's name, and holds no stack trace. */
function oneLineError(t: Test, result: Result, program: string): void {
  t.match(result.stderr, /^[^\n]+\n$/, `${program}: stderr is one line`);
  t.ok(result.stderr.startsWith(program), `${program}: stderr starts with the program name`);
  t.notOk(result.stderr.includes('    at '), `${program}: no stack trace`);
}

t.test('classic scenario', async (t) => {
  const [enc, dec] = await Promise.all([startServer('enc_server'), startServer('dec_server')]);
  t.teardown(() => enc.stop());
  t.teardown(() => dec.stop());
  const encPort = String(enc.port);
  const decPort = String(dec.port);
  const dir = t.testdir({});
  const key20 = join(dir, 'key20');
  const key70000 = join(dir, 'key70000');
  const plaintext = (n: number) => join(FIXTURES, `plaintext${n}`);
  const ciphertext = (n: number) => join(dir, `ciphertext${n}`);

  await t.test('keygen 20 and keygen 70000', async (t) => {
    const [k20, k70000] = await Promise.all([run('keygen', ['20']), run('keygen', ['70000'])]);
    t.equal(k20.code, 0);
    t.equal(k20.stderr, '');
    t.match(k20.stdout.toString('latin1'), /^[A-Z ]{20}\n$/, 'keygen 20: 20 symbols and a newline');
    t.equal(k20.stdout.length, 21);
    t.equal(k70000.code, 0);
    t.equal(k70000.stderr, '');
    t.equal(k70000.stdout.length, 70001, 'keygen 70000: 70000 symbols and a newline');
    t.match(k70000.stdout.toString('latin1'), /^[A-Z ]{70000}\n$/);
    writeFileSync(key20, k20.stdout);
    writeFileSync(key70000, k70000.stdout);
  });

  await t.test('key20 is too short for plaintext1', async (t) => {
    const r = await run('enc_client', [plaintext(1), key20, encPort]);
    t.equal(r.code, 1);
    t.equal(r.stdout.length, 0, 'nothing on stdout');
    t.equal(r.stderr, `enc_client: error: key '${key20}' is too short: 20 symbols for a 36-symbol text\n`, 'the exact message');
  });

  await t.test('encrypt plaintext1', async (t) => {
    const r = await run('enc_client', [plaintext(1), key70000, encPort]);
    t.equal(r.code, 0);
    t.equal(r.stderr, '');
    const out = r.stdout.toString('latin1');
    t.match(out, /^[A-Z ]{36}\n$/, '36 symbols and a newline');
    t.not(out, readFileSync(plaintext(1), 'latin1'), 'differs from the plaintext');
    t.equal(out, model(symbolsOf(plaintext(1)), symbolsOf(key70000), 'encrypt') + '\n', 'c = (p + k) mod 27');
    writeFileSync(ciphertext(1), r.stdout);
  });

  await t.test('dec_client against enc_server is rejected', async (t) => {
    const r = await run('dec_client', [ciphertext(1), key70000, encPort]);
    t.equal(r.code, 2);
    t.equal(r.stdout.length, 0, 'nothing on stdout');
    oneLineError(t, r, 'dec_client');
    t.match(r.stderr, /reject/i, 'stderr says the server rejected it');
  });

  await t.test('enc_client against dec_server is rejected', async (t) => {
    const r = await run('enc_client', [plaintext(1), key70000, decPort]);
    t.equal(r.code, 2);
    t.equal(r.stdout.length, 0, 'nothing on stdout');
    oneLineError(t, r, 'enc_client');
    t.match(r.stderr, /reject/i, 'stderr says the server rejected it');
  });

  await t.test('decrypt ciphertext1', async (t) => {
    const r = await run('dec_client', [ciphertext(1), key70000, decPort]);
    t.equal(r.code, 0);
    t.equal(r.stderr, '');
    t.equal(r.stdout.toString('latin1'), readFileSync(plaintext(1), 'latin1'), 'round trip gives plaintext1');
  });

  await t.test('five enc_clients at once', async (t) => {
    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => run('enc_client', [plaintext(n), key70000, encPort])));
    const key = symbolsOf(key70000);
    for (const n of [1, 2, 3, 4]) {
      const r = results[n - 1];
      t.equal(r.code, 0, `plaintext${n}: exit 0`);
      t.equal(r.stderr, '', `plaintext${n}: no stderr`);
      const text = symbolsOf(plaintext(n));
      t.equal(r.stdout.length, text.length + 1, `plaintext${n}: ${text.length} symbols and a newline`);
      t.ok(r.stdout.toString('latin1') === model(text, key, 'encrypt') + '\n', `plaintext${n}: matches the mod-27 model`);
      writeFileSync(ciphertext(n), r.stdout);
    }
    const bad = results[4];
    t.equal(bad.code, 1, 'plaintext5: exit 1');
    t.equal(bad.stdout.length, 0, 'plaintext5: nothing on stdout');
    oneLineError(t, bad, 'enc_client');
    t.ok(bad.stderr.includes('plaintext5'), 'plaintext5: stderr names the file');
  });

  await t.test('four dec_clients at once', async (t) => {
    const results = await Promise.all([1, 2, 3, 4].map((n) => run('dec_client', [ciphertext(n), key70000, decPort])));
    for (const n of [1, 2, 3, 4]) {
      const r = results[n - 1];
      t.equal(r.code, 0, `ciphertext${n}: exit 0`);
      t.equal(r.stderr, '', `ciphertext${n}: no stderr`);
      t.ok(r.stdout.equals(readFileSync(plaintext(n))), `ciphertext${n}: decrypts to plaintext${n}`);
    }
  });

  await t.test('a 4 MiB round trip', async (t) => {
    const size = 4 * 1024 * 1024;
    // Bias does not matter here: any text over the alphabet will do.
    const random = randomBytes(size);
    const textBytes = Buffer.allocUnsafe(size + 1);
    for (let i = 0; i < size; i++) textBytes[i] = ALPHABET.charCodeAt(random[i] % 27);
    textBytes[size] = 0x0a;
    const textFile = join(dir, 'big');
    const keyFile = join(dir, 'bigkey');
    const cipherFile = join(dir, 'big.enc');
    writeFileSync(textFile, textBytes);
    const key = await run('keygen', [String(size)]);
    t.equal(key.code, 0);
    t.equal(key.stdout.length, size + 1);
    writeFileSync(keyFile, key.stdout);

    const encrypted = await run('enc_client', [textFile, keyFile, encPort]);
    t.equal(encrypted.code, 0);
    t.equal(encrypted.stderr, '');
    t.equal(encrypted.stdout.length, size + 1, 'ciphertext: 4 MiB symbols and a newline');
    const expected = model(textBytes.toString('latin1', 0, size), key.stdout.toString('latin1', 0, size), 'encrypt') + '\n';
    t.ok(encrypted.stdout.toString('latin1') === expected, 'ciphertext matches the mod-27 model');
    writeFileSync(cipherFile, encrypted.stdout);

    const decrypted = await run('dec_client', [cipherFile, keyFile, decPort]);
    t.equal(decrypted.code, 0);
    t.equal(decrypted.stderr, '');
    t.equal(decrypted.stdout.length, size + 1);
    t.ok(decrypted.stdout.equals(textBytes), 'decrypts to the original');
  });

  await t.test('the servers are still serving and stop cleanly', async (t) => {
    const r = await run('enc_client', [plaintext(3), key70000, encPort]);
    t.equal(r.code, 0, 'enc_server still serves after all of the above');
    t.notOk(enc.stderr().includes('    at '), 'enc_server logged no stack trace');
    t.notOk(dec.stderr().includes('    at '), 'dec_server logged no stack trace');
    const [encEnd, decEnd] = await Promise.all([enc.stop('SIGTERM'), dec.stop('SIGTERM')]);
    expectStoppedBySignal(t, encEnd, 'SIGTERM', 'enc_server');
    expectStoppedBySignal(t, decEnd, 'SIGTERM', 'dec_server');
  });
});
