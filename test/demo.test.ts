// npm run demo, end to end: every step succeeds, the refusal reads as expected, the files stay, no server is left.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { ROOT } from './helpers/programs.js';

function listens(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => resolve(true)).once('error', () => resolve(false));
    socket.once('connect', () => socket.destroy());
  });
}

t.test('scripts/demo.sh', async (t) => {
  const out = t.testdir({});
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile('bash', [join(ROOT, 'scripts', 'demo.sh')], { env: { ...process.env, OTP_DEMO_DIR: out }, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
  t.equal(code, 0, 'the demo exits 0', { stderr });
  t.match(stdout, /^exit status 2, as expected: /m, 'the refused client is shown as the expected outcome');
  t.match(stderr, /^dec_client: error: the server on port \d+ rejected dec_client: it is not a dec_server$/m, 'the refusal itself is shown');
  t.match(stdout, /^identical$/m, 'the round trip is identical');

  const message = readFileSync(join(ROOT, 'examples', 'message.txt'));
  t.ok(readFileSync(join(out, 'decrypted')).equals(message), 'the decrypted file is left, and is the message');
  const key = readFileSync(join(out, 'key'), 'latin1');
  t.equal(key.length, message.length, 'the key is left, as long as the message');
  const lines = stdout.split('\n');
  const shown = lines[lines.indexOf(`$ cut -c 1-72 ${out}/key`) + 1];
  t.equal(shown, key.slice(0, 72), 'the key is shown by the command printed before it');

  const ports = [...stdout.matchAll(/^\$ \.\/[a-z]+_server (\d+) &$/gm)].map((m) => Number(m[1]));
  t.equal(ports.length, 2, 'both servers were started');
  for (const port of ports) t.notOk(await listens(port), `the server on port ${port} is stopped`);
});
