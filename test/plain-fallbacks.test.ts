// The plain loops that stand in for the SIMD kernels: the stream tests with the kernels off, and the built programs under --jitless.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ROOT, run, startServer } from './helpers/programs.js';
import { model, randomSymbols, tempDir } from './helpers/wire.js';

/** The test files of the pieces that use a kernel when there is one. */
const STREAM_TESTS = ['cipher', 'symbol-check', 'random-symbols'];

const NO_SIMD = { OTP_NO_SIMD: '1' };
const JITLESS = { NODE_OPTIONS: '--jitless' };

/** V8's own notice under --jitless, before the program runs; anything else on stderr is the program's. */
const programStderr = (stderr: string): string => stderr.replace(/^Warning: disabling flag --expose[_-]wasm due to conflicting flags\n/m, '');

t.test('OTP_NO_SIMD=1 turns the kernels off', async (t) => {
  const probe = "require('./src/simd/kernels.ts').getKernels() === null";
  const ask = (env: NodeJS.ProcessEnv): string =>
    execFileSync(process.execPath, ['--import=tsx', '-p', probe], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8' }).trim();
  t.equal(ask({ OTP_NO_SIMD: '' }), 'false', 'kernels without it');
  t.equal(ask(NO_SIMD), 'true', 'none with it');
});

/** Runs one test file in a fresh node with `env` added; its exit code and all it wrote. */
async function runTestFile(file: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import=tsx', file], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const [code] = await once(child, 'close');
  return { code: code as number | null, output };
}

t.test('the stream tests pass with the kernels off', async (t) => {
  // The time limit the project's tap config gives a file (run alone, a file gets tap's 30 s).
  const env = { ...NO_SIMD, TAP_TIMEOUT: '120' };
  const runs = await Promise.all(STREAM_TESTS.map((name) => runTestFile(join('test', `${name}.test.ts`), env)));
  STREAM_TESTS.forEach((name, i) => {
    const { code, output } = runs[i];
    const failures = output.split('\n').filter((line) => /^\s*not ok\b/.test(line));
    t.equal(code, 0, `test/${name}.test.ts exits 0${failures.length ? ` (failed: ${failures.join(' | ').slice(0, 2000)})` : ''}`);
    t.match(output, /^ok \d+ - /m, `test/${name}.test.ts ran its tests`);
  });
});

t.test('the built programs under --jitless (no WebAssembly): the same ciphertext as with the kernels', async (t) => {
  t.equal(
    execFileSync('node', ['-p', 'typeof WebAssembly'], { env: { ...process.env, ...JITLESS }, encoding: 'utf8' }).trim(),
    'undefined',
    'under --jitless this node has no WebAssembly: the programs must take their plain loops',
  );
  const [simd, plain, plainDec] = await Promise.all([
    startServer('enc_server', ['--workers', '1']),
    startServer('enc_server', ['--workers', '1'], JITLESS),
    startServer('dec_server', ['--workers', '1'], JITLESS),
  ]);
  t.teardown(() => Promise.all([simd.stop(), plain.stop(), plainDec.stop()]));
  const dir = tempDir(t);
  // Well past SIMD_FROM, so that the programs with kernels use them, on both sides.
  const n = 300_000;
  const textFile = join(dir, 'text');
  const keyFile = join(dir, 'key');
  const text = randomSymbols(n);
  writeFileSync(textFile, `${text}\n`);

  const key = await run('keygen', [String(n + 10)], { env: JITLESS });
  t.equal(key.code, 0, 'keygen under --jitless exits 0');
  t.match(key.stdout.toString('latin1'), new RegExp(`^[A-Z ]{${n + 10}}\\n$`), 'keygen under --jitless: only symbols, and a newline');
  writeFileSync(keyFile, key.stdout);

  const withKernels = await run('enc_client', [textFile, keyFile, String(simd.port)]);
  const without = await run('enc_client', [textFile, keyFile, String(plain.port)], { env: JITLESS });
  t.equal(withKernels.code, 0, 'encrypted with the kernels');
  t.equal(without.code, 0, 'encrypted under --jitless');
  t.equal(programStderr(without.stderr), '', 'nothing on stderr');
  t.ok(without.stdout.equals(withKernels.stdout), 'the ciphertexts are byte-identical');
  const expected = `${model('encrypt', text, key.stdout.toString('latin1', 0, n))}\n`;
  t.ok(without.stdout.toString('latin1') === expected, 'and the mod-27 model agrees');

  const cipherFile = join(dir, 'cipher');
  writeFileSync(cipherFile, without.stdout);
  const back = await run('dec_client', [cipherFile, keyFile, String(plainDec.port)], { env: JITLESS });
  t.equal(back.code, 0, 'decrypted under --jitless');
  t.ok(back.stdout.equals(readFileSync(textFile)), 'back to the text');

  // The client's own check of the files, without kernels: a bad byte far into the text.
  const bad = Buffer.from(`${text}\n`, 'latin1');
  bad[n - 5] = 0x5b; // '['
  writeFileSync(textFile, bad);
  const refused = await run('enc_client', [textFile, keyFile, String(plain.port)], { env: JITLESS });
  t.equal(refused.code, 1, 'a bad character is refused under --jitless too');
  t.equal(programStderr(refused.stderr), `enc_client: error: bad character '[' (0x5b) in text '${textFile}' at byte ${n - 4}\n`);
});
