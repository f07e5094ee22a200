// A client's ERROR frame whose payload comes in two reads is logged whole: the first part
// must outlive the read buffer the next read goes into.
import t from 'tap';
import { FrameType } from '../src/protocol/frames.js';
import { startServer } from './helpers/programs.js';
import { frame, hello, linesFor, RawConnection, waitUntil } from './helpers/wire.js';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

t.test('the abandoning message is logged as the client sent it', async (t) => {
  const server = await startServer('enc_server', ['--workers', '1']);
  t.teardown(() => server.stop());
  const message = Buffer.from('\x09client gave up: disk full', 'latin1');
  const error = frame(FrameType.ERROR, message);
  const raw = new RawConnection(server.port);
  await raw.connected;
  raw.socket.write(Buffer.concat([hello(), frame(FrameType.TEXT, 'HELLO')]));
  await pause(200);
  raw.socket.write(error.subarray(0, 16));
  await pause(200);
  raw.socket.end(Buffer.concat([error.subarray(16), Buffer.alloc(40, 'X')]));
  await raw.closed;
  await waitUntil(() => linesFor(server.stderr(), raw.localPort).length > 0, 5000, 'the log line');
  t.match(linesFor(server.stderr(), raw.localPort)[0], /failed: abandoned by the client: client gave up: disk full$/);
});
