// enc_client and dec_client on bad usage and bad input, end to end: exit codes, one-line
// errors naming the program and the file, nothing on stdout; and text read from stdin.
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { FIXTURES, freePort, ROOT, run, startServer, type Result } from './helpers/programs.js';

const CLIENTS = ['enc_client', 'dec_client'] as const;
const VERSION: string = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;

/** stderr is exactly one line, starts with the program's name, and holds no stack trace. */
function oneLineError(t: Test, result: Result, program: string, what: string): void {
  t.match(result.stderr, /^[^\n]+\n$/, `${what}: stderr is exactly one line`);
  t.ok(result.stderr.startsWith(program), `${what}: stderr starts with '${program}'`);
  t.notOk(result.stderr.includes('    at '), `${what}: no stack trace`);
}

/** A usage or input error: exit 1, one line on stderr, nothing on stdout. */
function inputError(t: Test, result: Result, program: string, what: string): void {
  t.equal(result.code, 1, `${what}: exit 1`);
  t.equal(result.stdout.length, 0, `${what}: nothing on stdout`);
  oneLineError(t, result, program, what);
}

t.test('clients', async (t) => {
  const [enc, dec] = await Promise.all([startServer('enc_server'), startServer('dec_server')]);
  t.teardown(() => enc.stop());
  t.teardown(() => dec.stop());
  const port = { enc_client: String(enc.port), dec_client: String(dec.port) };

  const dir = t.testdir({});
  const text = join(FIXTURES, 'plaintext2');
  const textBytes = readFileSync(text);
  const symbols = textBytes.length - 1;
  const key = join(dir, 'key');
  const shortKey = join(dir, 'shortkey');
  const missing = join(dir, 'no-such-file');
  const folder = join(dir, 'a-directory');
  mkdirSync(folder);
  const keygen = await run('keygen', [String(symbols + 10)]);
  t.equal(keygen.code, 0, 'keygen makes the key');
  writeFileSync(key, keygen.stdout);
  writeFileSync(shortKey, keygen.stdout.subarray(0, 10));

  await t.test('files that cannot be read', async (t) => {
    const cases = CLIENTS.flatMap((program) => [
      { program, what: `${program}: missing text`, args: [missing, key, port[program]], names: missing },
      { program, what: `${program}: missing key`, args: [text, missing, port[program]], names: missing },
      { program, what: `${program}: directory as text`, args: [folder, key, port[program]], names: folder },
      { program, what: `${program}: directory as key`, args: [text, folder, port[program]], names: folder },
    ]);
    const results = await Promise.all(cases.map((c) => run(c.program, c.args)));
    cases.forEach((c, i) => {
      inputError(t, results[i], c.program, c.what);
      t.ok(results[i].stderr.includes(c.names), `${c.what}: stderr names '${c.names}'`);
    });
  });

  await t.test('bad character in a text file, key too short', async (t) => {
    const bad = join(FIXTURES, 'plaintext5');
    const results = await Promise.all(
      CLIENTS.flatMap((program) => [
        run(program, [bad, key, port[program]]),
        run(program, [text, shortKey, port[program]]),
      ]),
    );
    CLIENTS.forEach((program, i) => {
      inputError(t, results[2 * i], program, `${program}: bad character`);
      t.ok(results[2 * i].stderr.includes('plaintext5'), `${program}: bad character: stderr names the file`);
      inputError(t, results[2 * i + 1], program, `${program}: short key`);
      t.ok(results[2 * i + 1].stderr.includes(shortKey), `${program}: short key: stderr names the key file`);
    });
  });

  await t.test('bad ports and wrong argument counts', async (t) => {
    const cases = CLIENTS.flatMap((program) => [
      ...(program === 'enc_client' ? ['abc', '0', '70000', '', '1.5'] : ['abc', '0', '70000']).map((p) => ({
        program,
        what: `${program}: port '${p}'`,
        args: [text, key, p],
      })),
      { program, what: `${program}: no arguments`, args: [] },
      { program, what: `${program}: two arguments`, args: [text, key] },
      { program, what: `${program}: four arguments`, args: [text, key, port[program], 'extra'] },
      { program, what: `${program}: unknown option`, args: ['--no-such-option', text, key, port[program]] },
    ]);
    const results = await Promise.all(cases.map((c) => run(c.program, c.args)));
    cases.forEach((c, i) => inputError(t, results[i], c.program, c.what));
  });

  await t.test('nothing listens on the port', async (t) => {
    const nobody = String(await freePort());
    const results = await Promise.all(CLIENTS.map((program) => run(program, [text, key, nobody])));
    CLIENTS.forEach((program, i) => {
      const r = results[i];
      t.equal(r.code, 2, `${program}: exit 2`);
      t.equal(r.stdout.length, 0, `${program}: nothing on stdout`);
      oneLineError(t, r, program, program);
      t.ok(r.stderr.includes(nobody), `${program}: stderr names the port`);
    });
  });

  await t.test('--help and --version', async (t) => {
    const cases = [
      ...CLIENTS.flatMap((program) => [
        { program, flag: '--help' },
        { program, flag: '--version' },
      ]),
      { program: 'enc_client', flag: '-h' },
      { program: 'enc_client', flag: '-V' },
    ];
    const results = await Promise.all(cases.map((c) => run(c.program, [c.flag])));
    cases.forEach(({ program, flag }, i) => {
      const r = results[i];
      t.equal(r.code, 0, `${program} ${flag}: exit 0`);
      t.equal(r.stderr, '', `${program} ${flag}: nothing on stderr`);
      const out = r.stdout.toString('utf8');
      if (flag === '--help' || flag === '-h') {
        t.match(out, /^usage: /, `${program} ${flag}: starts with usage`);
        t.ok(out.includes(program), `${program} ${flag}: names the program`);
        t.match(out, /KEY PORT/, `${program} ${flag}: shows the arguments`);
      } else {
        t.match(out, /^[^\n]+\n$/, `${program} ${flag}: one line`);
        t.ok(out.trim().endsWith(VERSION), `${program} ${flag}: prints version ${VERSION}`);
      }
    });
  });

  await t.test('text from stdin', async (t) => {
    const [fromFile, fromStdin] = await Promise.all([
      run('enc_client', [text, key, port.enc_client]),
      run('enc_client', ['-', key, port.enc_client], { stdin: textBytes }),
    ]);
    t.equal(fromFile.code, 0, 'from the file: exit 0');
    t.equal(fromStdin.code, 0, 'from stdin: exit 0');
    t.equal(fromStdin.stderr, '', 'from stdin: nothing on stderr');
    t.equal(fromStdin.stdout.length, symbols + 1, 'from stdin: the right length');
    t.ok(fromStdin.stdout.equals(fromFile.stdout), 'stdin gives the same ciphertext as the file');
    t.not(fromStdin.stdout.toString('latin1'), textBytes.toString('latin1'), 'the ciphertext is not the text');

    const back = await run('dec_client', ['-', key, port.dec_client], { stdin: fromFile.stdout });
    t.equal(back.code, 0, 'dec_client from stdin: exit 0');
    t.ok(back.stdout.equals(textBytes), 'dec_client from stdin: gives the text back');

    const noNewline = await run('enc_client', ['-', key, port.enc_client], { stdin: textBytes.subarray(0, symbols) });
    t.equal(noNewline.code, 0, 'stdin without a final newline: exit 0');
    t.ok(noNewline.stdout.equals(fromFile.stdout), 'stdin without a final newline: the same ciphertext');
  });

  await t.test('bad stdin', async (t) => {
    // Positions count bytes from 1: the lower-case e is byte 5, the early newline byte 8.
    const [badChar, earlyNewline, tooLong] = await Promise.all([
      run('enc_client', ['-', key, port.enc_client], { stdin: 'ABCDe FGH\n' }),
      run('enc_client', ['-', key, port.enc_client], { stdin: 'ABCDEFG\nHIJ\n' }),
      run('enc_client', ['-', shortKey, port.enc_client], { stdin: textBytes }),
    ]);
    t.equal(badChar.code, 1, 'bad character: exit 1');
    oneLineError(t, badChar, 'enc_client', 'bad character');
    t.match(badChar.stderr, /\b5\b/, 'bad character: stderr gives its position, 5');
    t.equal(earlyNewline.code, 1, 'newline before the end: exit 1');
    oneLineError(t, earlyNewline, 'enc_client', 'newline before the end');
    t.match(earlyNewline.stderr, /\b8\b/, 'newline before the end: stderr gives its position, 8');
    t.equal(tooLong.code, 1, 'key shorter than stdin text: exit 1');
    oneLineError(t, tooLong, 'enc_client', 'key shorter than stdin text');
    t.ok(tooLong.stderr.includes(shortKey), 'key shorter than stdin text: stderr names the key file');
  });

  await t.test('the servers survived it all', async (t) => {
    const r = await run('enc_client', [text, key, port.enc_client]);
    t.equal(r.code, 0, 'enc_server still serves');
    t.notOk(enc.stderr().includes('    at '), 'enc_server logged no stack trace');
    t.notOk(dec.stderr().includes('    at '), 'dec_server logged no stack trace');
  });
});

t.test('a key too short for a regular text is refused before connecting: the exact message, and no connection', async (t) => {
  // Not a server: a listener that only counts who connects.
  const connections: Socket[] = [];
  const listener = createServer((socket) => connections.push(socket));
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const port = String((listener.address() as { port: number }).port);
  t.teardown(() => {
    for (const socket of connections) socket.destroy();
    listener.close();
  });
  const dir = t.testdir({ key20: `${'ABCDEFGHIJ'.repeat(2)}\n`, key0: '' });
  const text = join(FIXTURES, 'plaintext1'); // 36 symbols and a newline
  for (const program of CLIENTS) {
    for (const [name, symbols] of [['key20', 20], ['key0', 0]] as const) {
      const keyFile = join(dir, name);
      const r = await run(program, [text, keyFile, port]);
      t.equal(r.code, 1, `${program}, ${name}: exit 1`);
      t.equal(r.stdout.length, 0, `${program}, ${name}: nothing on stdout`);
      t.equal(r.stderr, `${program}: error: key '${keyFile}' is too short: ${symbols} symbols for a 36-symbol text\n`, `${program}, ${name}: the exact message`);
    }
  }
  // The listener accepts in order: once this probe is seen, any client's connection would have been.
  const probe = connect(Number(port), '127.0.0.1');
  await new Promise<void>((resolve) => {
    const check = (): void => void (connections.some((s) => s.remotePort === probe.localPort) ? resolve() : setTimeout(check, 10));
    probe.once('connect', check);
  });
  probe.destroy();
  t.equal(connections.length, 1, 'no client connected: the listener saw only the probe');
});
