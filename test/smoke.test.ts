import t from 'tap';
import { cipherTable } from '../src/alphabet.js';
t.test('x', async (t) => { t.equal(cipherTable('encrypt')[(65 << 8) | 66], 66); });
