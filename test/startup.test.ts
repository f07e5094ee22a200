// What the programs load at start (docs/PERFORMANCE.md): a plain job neither node:tls nor node:crypto nor perf_hooks; --help, --version and usage errors not even node:net or node:stream.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { bin, FIXTURES, startServer } from './helpers/programs.js';
import { makeCerts } from './helpers/certs.js';
import { tempDir } from './helpers/wire.js';

interface Loaded {
  /** What the program's bundle asked require() for. */
  required: string[];
  /** Every module Node loaded, `require`d or not (the global `performance` loads perf_hooks by itself); null where this Node keeps no list. */
  builtins: string[] | null;
}

/**
 * Runs `program` with a preload that writes out, as the process exits, the modules its
 * bundle required and the built-in modules Node loaded (an undocumented list: a Node
 * without it gives null). Through env(1), which sets NODE_OPTIONS to the preload alone:
 * the test runner adds a hook of its own to every child's, which loads net, crypto and
 * child_process itself. stdout and stderr are pipes, for which process.stdout and
 * process.stderr would be net.Sockets.
 */
async function runRecorded(t: Test, program: string, args: string[]): Promise<{ code: number | null; stderr: string; loaded: Loaded }> {
  const dir = tempDir(t);
  const preload = join(dir, 'modules.js');
  const list = join(dir, 'modules.json');
  writeFileSync(
    preload,
    `const Module = require('node:module');
const fs = require('node:fs');
const asked = new Set();
const require_ = Module.prototype.require;
Module.prototype.require = function (id) {
  if (/${program}$/.test(this.filename ?? '')) asked.add(id);
  return require_.apply(this, arguments);
};
process.on('exit', () => {
  const builtins = Array.isArray(process.moduleLoadList) ? process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13)) : null;
  fs.writeFileSync(${JSON.stringify(list)}, JSON.stringify({ required: [...asked], builtins }));
});
`,
  );
  const child = spawn('env', [`NODE_OPTIONS=--require ${preload}`, bin(program), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const deadline = setTimeout(() => child.kill('SIGKILL'), 20_000);
  let stderr = '';
  child.stdout.resume();
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(deadline);
  return { code, stderr, loaded: JSON.parse(readFileSync(list, 'utf8')) as Loaded };
}

/** Neither asked for nor loaded, where this Node says what it loaded. */
function notLoaded(t: Test, loaded: Loaded, module: string, what: string): void {
  t.notOk(loaded.required.includes(`node:${module}`), `${what}: does not require ${module}`);
  if (loaded.builtins) t.notOk(loaded.builtins.includes(module), `${what}: ${module} is not loaded at all`);
}

const plaintext1 = join(FIXTURES, 'plaintext1');

t.test('a plain enc_client job loads neither tls, crypto, os nor perf_hooks; --tls-ca loads tls and crypto', async (t) => {
  const certs = makeCerts(tempDir(t));
  const server = await startServer('enc_server');
  t.teardown(() => server.stop());
  const job = async (...extra: string[]): Promise<Loaded> => {
    const result = await runRecorded(t, 'enc_client', [plaintext1, plaintext1, String(server.port), ...extra]);
    t.equal(result.code, extra.length === 0 ? 0 : 2, `enc_client ${extra.join(' ')}: exit ${extra.length === 0 ? 0 : 2}`, { stderr: result.stderr });
    return result.loaded;
  };
  const plain = await job();
  t.ok(plain.required.includes('node:net'), `the record is there: net was asked for (${plain.required.join(' ')})`);
  for (const module of ['tls', 'crypto', 'os', 'perf_hooks']) notLoaded(t, plain, module, 'a plain job');
  // Against a plain server a TLS client fails, but it has loaded tls and crypto to try.
  const secure = await job('--tls-ca', certs.ca);
  t.ok(secure.required.includes('node:tls') && secure.required.includes('node:crypto'), `asked for TLS, it loads tls and crypto (${secure.required.join(' ')})`);
});

for (const program of ['enc_client', 'dec_client', 'enc_server', 'dec_server', 'keygen']) {
  t.test(`${program}: --help, --version and a usage error load neither net nor stream`, async (t) => {
    for (const args of [['--help'], ['--version'], ['--no-such-option']]) {
      const { code, stderr, loaded } = await runRecorded(t, program, args);
      t.equal(code, args[0] === '--no-such-option' ? 1 : 0, `${program} ${args[0]}: exit code`, { stderr });
      t.ok(loaded.required.length > 0, `${program} ${args[0]}: the record is there (${loaded.required.join(' ')})`);
      for (const module of ['net', 'stream', 'tls', 'crypto', 'child_process']) notLoaded(t, loaded, module, `${program} ${args[0]}`);
    }
  });
}
