// --help and --version are written straight to the descriptor (src/cli/direct-write.ts): whole, even to a pipe another process left non-blocking and full.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import t from 'tap';
import { bin, run } from './helpers/programs.js';

/**
 * A shell runs a Node program that makes its stdout, a pipe, non-blocking (as Node does
 * with any pipe it writes to) and fills it until it takes not one byte more; then, on that same pipe,
 * the program, whose first write answers EAGAIN. The filler ends by SIGKILL: a Node that
 * exits puts its stdio's flags back, and libuv clears the flag for the children it starts.
 */
const FILL = `
const { writeSync } = require('node:fs');
void process.stdout; // libuv opens the pipe, and sets O_NONBLOCK on it
let filled = 0;
for (const size of [4096, 1]) {
  for (;;) {
    try { filled += writeSync(1, Buffer.alloc(size, 0x2e)); } catch (err) { if (err.code === 'EAGAIN') break; throw err; }
  }
}
process.stderr.write('filled ' + filled + '\\n', () => process.kill(process.pid, 'SIGKILL'));
`;

t.test('--help to a full non-blocking pipe: waited for, and written whole', async (t) => {
  const help = (await run('enc_client', ['--help'])).stdout.toString();
  t.match(help, /^usage: enc_client /, 'the help, as written to an ordinary pipe');
  // A pipe of the shell's (the test's own stdio would be a socket pair), which nothing
  // drains for a second: the program meets it full, and must wait.
  const script = '{ "$3" -e "$1"; exec "$2" --help; } | { sleep 1; exec cat; }';
  const child = spawn('bash', ['-o', 'pipefail', '-c', script, 'bash', FILL, bin('enc_client'), process.execPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const deadline = setTimeout(() => child.kill('SIGKILL'), 20_000);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const chunks: Buffer[] = [];
  child.stdout!.on('data', (chunk: Buffer) => chunks.push(chunk));
  const [code] = await once(child, 'close');
  clearTimeout(deadline);
  const out = Buffer.concat(chunks).toString('latin1');
  const filled = Number(/filled (\d+)/.exec(stderr)?.[1]);
  t.ok(filled > 0, `the pipe was full before the program ran (${filled} bytes)`);
  t.equal(code, 0, 'the program exits 0', { stderr });
  t.equal(out.slice(filled), help, 'after the filler, the whole help and nothing else');
});
