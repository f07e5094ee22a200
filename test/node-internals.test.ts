// Each trick in src/node-internals.ts still does what it is there for, on the Node running the tests (the listening handle's: test/server-listener.test.ts).
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { getHeapSpaceStatistics } from 'node:v8';
import t from 'tap';
import { collectYoungGarbage, readIntoBuffer } from '../src/node-internals.js';

const youngBytes = (): number => getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')!.space_used_size;

t.test('collectYoungGarbage runs a young-generation collection', async (t) => {
  let junk: object[] | null = null;
  // Garbage in the young generation, measured; tried again in case V8 collected on its own meanwhile.
  for (let attempt = 0; attempt < 10; attempt++) {
    collectYoungGarbage();
    const empty = youngBytes();
    junk = [];
    for (let i = 0; i < 4000; i++) junk.push({ i, text: `garbage ${i}` });
    junk = null;
    const full = youngBytes();
    if (full - empty < 100_000) continue;
    collectYoungGarbage();
    const after = youngBytes();
    t.ok(after < empty + (full - empty) / 4, `the young generation went from ${full} bytes used to ${after} (${empty} before the garbage)`);
    return;
  }
  t.fail('could not get 100 kB of garbage into the young generation to collect');
});

t.test('readIntoBuffer makes an accepted socket read into one buffer, and pause/resume stop and restart it', async (t) => {
  const buffer = Buffer.alloc(64);
  const got: string[] = [];
  let dataEvents = 0;
  let served: Socket | null = null;
  const server = createServer((socket) => {
    served = socket;
    socket.on('data', () => dataEvents++);
    t.ok(
      readIntoBuffer(socket, buffer, (bytes) => {
        got.push(buffer.toString('latin1', 0, bytes));
        socket.pause();
      }),
      'this Node lets an accepted socket read into a buffer of ours',
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  t.teardown(() => {
    client.destroy();
    server.close();
  });
  const until = async (done: () => boolean, what: string): Promise<void> => {
    const end = Date.now() + 10_000;
    while (!done()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  await until(() => served !== null, 'the connection');
  client.write('first');
  await until(() => got.length === 1, 'the first read');
  client.write('second');
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.same(got, ['first'], 'a paused socket reads nothing more');
  served!.resume();
  await until(() => got.length === 2, 'the read after resume');
  t.same(got, ['first', 'second'], 'each read came through the callback, into our buffer');
  t.equal(dataEvents, 0, "and not as 'data'");
});
