// A client that is done ends by letting its event loop run dry, not by process.exit(), which can hang forever on Node 24 (src/cli/exit.ts).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { EXIT_BACKSTOP_MS } from '../src/cli/exit.js';
import { FIXTURES, ROOT, run, startServer } from './helpers/programs.js';
import { tempDir } from './helpers/wire.js';

/** A preload that records every process.exit() call of the program in `record`, then lets it exit. */
function exitSpy(dir: string): { preload: string; record: string } {
  const preload = join(dir, 'exit-spy.js');
  const record = join(dir, 'exit-calls');
  writeFileSync(
    preload,
    `const fs = require('node:fs');
const exit = process.exit;
process.exit = function (code) {
  fs.appendFileSync(${JSON.stringify(record)}, 'process.exit(' + code + ')\\n');
  return exit.apply(this, arguments);
};
`,
  );
  return { preload, record };
}

t.test('a finished job ends without process.exit()', async (t) => {
  const dir = tempDir(t);
  const { preload, record } = exitSpy(dir);
  const [enc, dec] = await Promise.all([startServer('enc_server'), startServer('dec_server')]);
  t.teardown(() => Promise.all([enc.stop(), dec.stop()]));
  const plaintext = join(FIXTURES, 'plaintext4');
  const key = join(dir, 'key');
  writeFileSync(key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ '.repeat(4000) + '\n');
  const env = { NODE_OPTIONS: `--require ${preload}` };
  const exits = (): string => (existsSync(record) ? readFileSync(record, 'utf8') : '');

  const fromFile = await run('enc_client', [plaintext, key, String(enc.port)], { env });
  t.equal(fromFile.code, 0, 'enc_client from a file: exit 0', { stderr: fromFile.stderr });
  t.equal(exits(), '', 'and no process.exit()');

  const fromStdin = await run('enc_client', ['-', key, String(enc.port)], { env, stdin: readFileSync(plaintext) });
  t.equal(fromStdin.code, 0, 'enc_client from stdin: exit 0', { stderr: fromStdin.stderr });
  t.ok(fromStdin.stdout.equals(fromFile.stdout), 'the same ciphertext');
  t.equal(exits(), '', 'and no process.exit()');

  const cipher = join(dir, 'cipher');
  writeFileSync(cipher, fromFile.stdout);
  const back = await run('dec_client', [cipher, key, String(dec.port)], { env });
  t.equal(back.code, 0, 'dec_client: exit 0', { stderr: back.stderr });
  t.ok(back.stdout.equals(readFileSync(plaintext)), 'the round trip gives the text back');
  t.equal(exits(), '', 'and no process.exit()');
});

/**
 * Runs `source` (CommonJS, with tsx to require TypeScript) in a child, which calls
 * `end()` to end itself; its exit code, and the milliseconds from end() to its 'exit'
 * (counted inside the child, so that a slow start under load does not count).
 */
async function runScript(source: string): Promise<{ code: number | null; ms: number }> {
  const clock = `let endedAt = 0;
process.on('exit', () => process.stdout.write(String(performance.now() - endedAt)));
const { endWhenIdle } = require(${JSON.stringify(join(ROOT, 'src', 'cli', 'exit.ts'))});
const end = (code, open) => { endedAt = performance.now(); endWhenIdle(code, open); };
`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', clock + source], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  // A child that never ends is a failure to report, not a test to hang.
  const killer = setTimeout(() => child.kill('SIGKILL'), 5 * EXIT_BACKSTOP_MS);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(killer);
  return { code, ms: Number(out) };
}

t.test('endWhenIdle', async (t) => {
  const [idle, held] = await Promise.all([
    // A listening socket stands for what the program had open: endWhenIdle closes it.
    runScript(`const server = require('node:net').createServer().listen(0, '127.0.0.1', () => end(3, [{ destroy: () => server.close() }]));`),
    // Something it was not told about holds the loop: process.exit() ends it after the backstop.
    runScript(`setInterval(() => {}, 60_000);
end(4, []);`),
  ]);
  t.equal(idle.code, 3, 'with nothing left open, the process ends with the status given');
  t.ok(idle.ms < EXIT_BACKSTOP_MS / 2, `and at once, not at the backstop (${Math.round(idle.ms)} ms after the call)`);
  t.equal(held.code, 4, 'held open, it still ends with the status given');
  t.ok(held.ms >= EXIT_BACKSTOP_MS - 10, `at the backstop (${Math.round(held.ms)} ms after the call)`);
});
