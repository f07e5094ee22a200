// The V8 flags a server's worker processes start with, so that their memory does not follow the machine's size.
//
// From Node 24 (V8 13) the young generation is sized by the machine's memory: on a 24 GiB
// machine each worker's new space grew to 64 MiB, and the five workers of a server serving
// short connections settled near 940 MiB in all (Node 20: near 400 after 32,000); their live
// heap stayed at 4-9 MiB each: sizing, not a leak. A worker moves bytes that live outside
// the heap and reads a plain socket into one reused buffer (job.ts), so a small heap should cost
// it little (a 32 MiB job's time moved within the noise): --optimize-for-size keeps the new space at 2 MiB and grows the old generation in
// smaller steps (the five: 350 MiB after 6,000 connections), on every Node line alike.
export const WORKER_V8_FLAGS: readonly string[] = ['--optimize-for-size'];
