// The V8 flags a server's worker processes start with, so that their memory does not follow the machine's size.
//
// From Node 24 (V8 13) the young generation is sized by the machine's memory: on a 24 GiB
// machine each worker's new space grows to 64 MiB, and V8 lets the old generation run
// further before its first full collection. Five workers serving many short connections so
// sat at some 190 MiB each instead of 60 (Node 20/22), and grew by 105 MiB in all over
// 2000 connections; their live heap stayed at 4-9 MiB: sizing, not a leak. A worker moves
// bytes that live outside the heap and runs its own young collections (MemoryKeeper), so
// it loses nothing by a small heap: --optimize-for-size keeps the new space at 2 MiB and
// grows the old generation by smaller steps, on every Node line alike.
export const WORKER_V8_FLAGS: readonly string[] = ['--optimize-for-size'];
