// The job's lent read buffers must not be read into while a write made from them waits:
// a link that takes writes late (a full send buffer) is simulated by completing each
// socket write 150 ms after it is made; the data is read at that time, as libuv would.
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import t from 'tap';
import { FrameType } from '../src/protocol/frames.js';
import { Job, type JobEnd } from '../src/server/job.js';
import { ABC, decodeFrames, frame, resultText } from './helpers/wire.js';

const { TEXT, KEY, END, DONE } = FrameType;

function slowWrites(socket: Socket): void {
  const s = socket as unknown as Record<string, (...args: unknown[]) => void>;
  const write = s._write.bind(socket);
  const writev = s._writev.bind(socket);
  s._write = (chunk, encoding, cb) => void setTimeout(() => write(chunk, encoding, cb), 150);
  s._writev = (chunks, cb) => void setTimeout(() => writev(chunks, cb), 150);
}

t.test('results made from the first read and the later ones come back intact', async (t) => {
  let ended: JobEnd | null = null;
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    slowWrites(socket);
    // As Connection does: the first read (here, what follows the HELLO) starts the job.
    const first = (chunk: Buffer): void => {
      socket.off('data', first);
      new Job(socket, 'encrypt', chunk, (end) => (ended = end));
    };
    socket.on('data', first);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const N = 60_000;
  // Enough for the job's read buffers to be read into again from their start, more than once.
  const PAIRS = 40;
  let expected = 'A'.repeat(N);
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  const got: Buffer[] = [];
  client.on('data', (chunk: Buffer) => got.push(chunk));
  const closed = new Promise((resolve) => client.on('close', resolve));
  client.write(Buffer.concat([frame(TEXT, Buffer.alloc(N, 'A')), frame(KEY, Buffer.alloc(N, 'A'))]));
  await new Promise((resolve) => setTimeout(resolve, 50));
  for (let k = 0; k < PAIRS; k++) {
    const letter = ABC[1 + (k % 25)];
    expected += letter.repeat(N);
    client.write(Buffer.concat([frame(TEXT, Buffer.alloc(N, letter)), frame(KEY, Buffer.alloc(N, 'A'))]));
  }
  client.end(frame(END));
  await closed;
  const { frames } = await decodeFrames(Buffer.concat(got));
  const result = resultText({ frames } as never);
  t.equal(frames.at(-1)?.type, DONE, 'the job ends with DONE');
  t.equal(result.length, expected.length, 'every symbol came back');
  let wrong = 0;
  for (let i = 0; i < expected.length; i++) if (result[i] !== expected[i]) wrong++;
  t.equal(wrong, 0, 'and every symbol is the right one');
  t.equal(ended!.outcome, 'ok');
});
