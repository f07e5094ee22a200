// What a plain job loads: neither node:tls nor node:crypto (about 6 ms of start-up each, of a 37-byte job's some 60), which only TLS and --no-reuse need.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { FIXTURES, run, startServer } from './helpers/programs.js';
import { makeCerts } from './helpers/certs.js';
import { tempDir } from './helpers/wire.js';

t.test('a plain enc_client job loads neither tls nor crypto; --tls-ca loads both', async (t) => {
  const dir = tempDir(t);
  const certs = makeCerts(dir);
  const preload = join(dir, 'modules.js');
  const list = join(dir, 'modules');
  void 0;
  // The modules the program's bundle itself requires (not the test runner, which hooks
  // children of its own), written out as the process exits.
  writeFileSync(
    preload,
    `const Module = require('node:module');
const fs = require('node:fs');
const asked = new Set();
const require_ = Module.prototype.require;
Module.prototype.require = function (id) {
  if (/enc_client$/.test(this.filename ?? '')) asked.add(id);
  return require_.apply(this, arguments);
};
process.on('exit', () => fs.writeFileSync(${JSON.stringify(list)}, [...asked].join('\\n')));
`,
  );
  const server = await startServer('enc_server');
  t.teardown(() => server.stop());
  const plaintext1 = join(FIXTURES, 'plaintext1');
  const loaded = async (...extra: string[]): Promise<string[]> => {
    const result = await run('enc_client', [plaintext1, plaintext1, String(server.port), ...extra], { env: { NODE_OPTIONS: `--require ${preload}` } });
    t.equal(result.code, extra.length === 0 ? 0 : 2, `enc_client ${extra.join(' ')}: exit ${extra.length === 0 ? 0 : 2}`, { stderr: result.stderr });
    return readFileSync(list, 'utf8').split('\n');
  };
  const plain = await loaded();
  t.ok(plain.includes('node:net'), `the record is there: net was asked for (${plain.join(' ')})`);
  t.notOk(plain.includes('node:tls'), 'a plain job does not load tls');
  t.notOk(plain.includes('node:crypto'), 'nor crypto');
  // Against a plain server a TLS client fails, but it has loaded tls and crypto to try.
  const secure = await loaded('--tls-ca', certs.ca);
  t.ok(secure.includes('node:tls') && secure.includes('node:crypto'), `asked for TLS, it loads tls and crypto (${secure.join(' ')})`);
});
