import t from 'tap';
import { PROGRESS_FROM, progressLine, wantProgress } from '../src/client/progress.js';
import { FIXTURES, run, startServer } from './helpers/programs.js';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';

const MIB = 1 << 20;

t.test('the meter is on by default only on a terminal and above 16 MiB', async (t) => {
  const yes = (): boolean => true;
  const no = (): boolean => false;
  t.equal(wantProgress(undefined, PROGRESS_FROM + 1, yes), true);
  t.equal(wantProgress(undefined, PROGRESS_FROM + 1, no), false, 'never when stderr is redirected');
  t.equal(wantProgress(undefined, null, yes), true, 'stdin on a terminal: size unknown');
  t.equal(wantProgress(true, 10, no), true, '--progress forces it');
  t.equal(wantProgress(false, 1e12, yes), false, '--no-progress stops it');
  // Asking makes process.stderr, which a small job has no use for.
  const asked = (): boolean => t.fail('stderr asked about for a small input') || true;
  t.equal(wantProgress(undefined, PROGRESS_FROM, asked), false, 'up to 16 MiB: no meter, and stderr not asked about');
});

t.test('a meter line shows percent, rate and time left when the size is known', async (t) => {
  t.equal(progressLine('enc_client', 64 * MIB, 256 * MIB, 2), 'enc_client: 25% 64.0 of 256.0 MiB, 32 MiB/s, 0:06 left');
  t.equal(progressLine('dec_client', 10 * MIB, null, 4), 'dec_client: 10.0 MiB, 3 MiB/s');
  t.match(progressLine('enc_client', 0, 100, 0), /0% .* \? left$/);
  t.match(progressLine('enc_client', MIB, 7200 * MIB + MIB, 1), /2:00:00 left$/);
});

t.test('--progress draws on stderr and leaves stdout clean; redirected stderr stays empty by default', async (t) => {
  const server = await startServer('enc_server');
  t.teardown(() => server.stop());
  const key = join(t.testdir(), 'key');
  writeFileSync(key, 'A'.repeat(100) + '\n');
  const text = join(FIXTURES, 'plaintext1');
  const quiet = await run('enc_client', [text, key, String(server.port)]);
  t.equal(quiet.code, 0);
  t.equal(quiet.stderr, '', 'no meter when stderr is not a terminal');
  const loud = await run('enc_client', ['--progress', text, key, String(server.port)]);
  t.equal(loud.code, 0);
  t.match(loud.stderr, /enc_client: \d+% /, 'the meter was drawn');
  t.ok(loud.stderr.endsWith('\r\x1b[K'), 'and cleared at the end');
  t.same(loud.stdout, quiet.stdout, 'stdout is the same with and without the meter');
  const off = await run('enc_client', ['--no-progress', text, key, String(server.port)]);
  t.equal(off.stderr, '');
});
