// V8's garbage collector on demand, for the few places that know better than its heuristics.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (options: { type: 'minor' | 'major'; execution: 'sync' }) => void;
let gc: Gc | undefined;

export function collectGarbage(type: 'minor' | 'major'): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as Gc;
  }
  gc({ type, execution: 'sync' });
}
