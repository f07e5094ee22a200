// A key file that shrinks while the client reads it: the error gives the symbols it has left.
import { truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { checkKey, checkText, openInput } from '../src/client/input-file.js';
import { CHUNK_SIZE, FrameType, Role, type Frame } from '../src/protocol/frames.js';
import { PadSource } from '../src/client/pad-source.js';
import { Lease } from '../src/memory/lease.js';

const SYMBOLS = 4 * CHUNK_SIZE;

/**
 * Reads the job's frames, cutting the key down to `shrinkTo` bytes once the first KEY
 * frame is out (the source has then read at most two chunks ahead); returns the error.
 */
async function shrinkDuringJob(dir: string, shrinkTo: number): Promise<Error | null> {
  const textPath = join(dir, 'text');
  const keyPath = join(dir, 'key');
  writeFileSync(textPath, 'A'.repeat(SYMBOLS) + '\n');
  writeFileSync(keyPath, 'B'.repeat(SYMBOLS) + '\n');
  const text = openInput('text', textPath);
  const key = openInput('key', keyPath);
  const symbols = checkText(text);
  checkKey(key, symbols, 0);
  const source = new PadSource({ role: Role.ENCRYPT, text, key, symbols, keyChecked: true });
  try {
    for await (const frame of source as AsyncIterable<Frame>) {
      if (frame.type === FrameType.KEY && frame.payload.length > 0) truncateSync(keyPath, shrinkTo);
      Lease.releaseView(frame.payload);
    }
  } catch (err) {
    return err as Error;
  }
  return null;
}

t.test('shrunk below what was already read: the count is what is left', async (t) => {
  const err = await shrinkDuringJob(t.testdir({}), 1000);
  t.ok(err, 'the job fails');
  t.equal(
    err?.message,
    `key '${join(t.testdirName, 'key')}' is too short (it shrank while it was read): 1000 symbols for a ${SYMBOLS}-symbol text`,
  );
});

t.test('shrunk to a point not yet read: the count is where it ends', async (t) => {
  const left = 3 * CHUNK_SIZE + 5;
  const err = await shrinkDuringJob(t.testdir({}), left);
  t.ok(err, 'the job fails');
  t.match(err?.message, new RegExp(`: ${left} symbols for a ${SYMBOLS}-symbol text$`));
});
