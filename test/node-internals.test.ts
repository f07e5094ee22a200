// Each trick in src/node-internals.ts still does what it is there for, on the Node running the tests.
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { getHeapSpaceStatistics } from 'node:v8';
import t, { type Test } from 'tap';
import { collectYoungGarbage, freeze, thaw } from '../src/node-internals.js';

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

/** A connected pair: our client socket and the server's, accepted paused as the servers accept. */
async function socketPair(t: Test): Promise<{ client: Socket; server: Socket }> {
  const listener = createServer({ pauseOnConnect: true });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const accepted = once(listener, 'connection') as Promise<[Socket]>;
  const client = connect((listener.address() as { port: number }).port, '127.0.0.1');
  const [server] = await accepted;
  await once(client, 'connect').catch(() => {});
  t.teardown(() => {
    client.destroy();
    server.destroy();
    listener.close();
  });
  return { client, server };
}

/** Lets time pass: for checking that something does not happen. */
const quietWhile = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

t.test('freeze stops a socket reading at the handle; thaw reads on, no byte lost', async (t) => {
  const { client, server } = await socketPair(t);
  let got = '';
  server.setEncoding('latin1').on('data', (chunk: string) => (got += chunk));
  server.resume();
  client.write('first');
  while (got.length < 5) await once(server, 'data');
  t.equal(got, 'first', 'a running socket reads');

  freeze(server);
  client.write('second');
  // Nothing to wait for but time: a socket that still read would have had it by now.
  await quietWhile(500);
  t.equal(got, 'first', 'frozen: nothing more is read');
  t.equal(server.bytesRead, 5, 'frozen: the handle read no byte (they wait in the kernel)');

  thaw(server);
  while (got.length < 11) await once(server, 'data');
  t.equal(got, 'firstsecond', 'thawed: the bytes that waited come, all of them, in order');
});

t.test('thaw on a socket that was never frozen just resumes it', async (t) => {
  const { client, server } = await socketPair(t);
  let got = '';
  server.setEncoding('latin1').on('data', (chunk: string) => (got += chunk));
  client.write('hello');
  thaw(server);
  while (got.length < 5) await once(server, 'data');
  t.equal(got, 'hello');
});
