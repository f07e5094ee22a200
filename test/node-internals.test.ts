// Each trick in src/node-internals.ts still does what it is there for, on the Node running the tests (the listening handle's: test/server-listener.test.ts).
import { getHeapSpaceStatistics } from 'node:v8';
import t from 'tap';
import { collectYoungGarbage } from '../src/node-internals.js';

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
