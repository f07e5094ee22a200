// npm run bench [-- --sizes 1,16,64 --runs 3 --json FILE]
// npm run bench -- --against REV [--runs 5]: this tree against revision REV instead (bench/against.ts).
// Throughput and memory of the built programs against the streaming C reference
// (../shared/bench/otp_ref.c, built with cc when there is one), side by side in one run:
// enc_client through enc_server on random texts of each size, alternating with the C
// client and server on the same files and with `node -e 0`, and dec_client on the result;
// five 64 MiB jobs at once against five C jobs; small-message latency against a bare
// `node -e 0`; keygen against `head -c N /dev/urandom`. Every issue-10 target is printed
// as a ratio from this run. Inputs go to a temp folder (in /dev/shm when there is one)
// that is removed at the end, whatever happens.
// Peak RSS of a client comes from GNU /usr/bin/time (%M) when there is one, else from
// polling /proc/PID/status VmHWM; BENCH_NO_TIME=1 forces the polling.
import { existsSync, mkdtempSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem, type as osType } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  BenchError,
  buildReference,
  clientRssMethod,
  compareFiles,
  configure,
  ENVIRONMENT_NOTE,
  killClients,
  killEverything,
  median,
  MIB,
  runProgram,
  Server,
  stopServers,
  TreePeak,
  warmUp,
  writeRandomText,
} from './lib.js';
import { measureCapacity, renderCapacity, type CapacityResult } from './capacity.js';
import { measureTls, renderTlsCeiling, type TlsResult } from './tls.js';
import { measureTinyFrames, renderTinyFrames, type TinyFramesResult } from './tiny-frames.js';
import { measureAgainst, renderAgainst } from './against.js';

const ROOT = join(__dirname, '..');
const bin = (name: string): string => join(ROOT, name);
const PLAINTEXT1 = join(ROOT, 'test', 'fixtures', 'plaintext1');
const PLAINTEXT4 = join(ROOT, 'test', 'fixtures', 'plaintext4');
const LATENCY_RUNS = 20;
const KEYGEN_LENGTH = 100_000_000;
const SMALL_KEY = 70_000;
const CLIENTS_AT_ONCE = 5;
const FIVE_JOBS_MIB = 64;
const REFERENCE_SOURCE = process.env.OTP_REF_C ?? join(ROOT, '..', 'shared', 'bench', 'otp_ref.c');
/** The targets of issue 10, as ratios. */
const TARGET = { floor: 1.2, five: 1.3, keygen: 0.6, latency: 1.2, rssMiB: 80, decOverEnc: 1.1 };

const USAGE = `usage: npm run bench -- [--sizes MIB,MIB,...] [--runs N] [--json FILE] [--against REV]
  --sizes    text sizes in MiB (default 1,16,64,256,1024)
  --runs     runs per measurement, the median is reported (default 3; 5 with --against)
  --json     also write the figures to FILE as JSON
  --against  build git revision REV in a scratch worktree and measure this tree against it,
             alternating on the same files: jobs of 64 and 256 MiB (wall, server CPU, memory),
             five at once, tiny jobs a second, 37 bytes, --version, keygen, TLS
`;

interface Options {
  sizes: number[];
  runs: number;
  json: string | null;
  against: string | null;
}

function parseOptions(): Options {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        sizes: { type: 'string' },
        runs: { type: 'string' },
        json: { type: 'string' },
        against: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new BenchError(`${(err as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const sizes = (values.sizes ?? '1,16,64,256,1024').split(',').map((s) => s.trim());
  for (const size of sizes) {
    if (!/^\d+(\.\d+)?$/.test(size) || Number(size) <= 0) {
      throw new BenchError(`--sizes: '${size}' is not a positive number of MiB\n${USAGE}`);
    }
  }
  const runs = values.runs === undefined ? (values.against === undefined ? 3 : 5) : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new BenchError(`--runs: '${values.runs}' is not a whole number from 1\n${USAGE}`);
  // npm run starts scripts in the project root; a relative FILE is meant from where npm was run.
  const json = values.json === undefined ? null : resolve(process.env.INIT_CWD ?? process.cwd(), values.json);
  return { sizes: sizes.map(Number), runs, json, against: values.against ?? null };
}

const note = (line: string): void => void process.stderr.write(`bench: ${line}\n`);
const round = (x: number, digits = 3): number => Number(x.toFixed(digits));
const seconds = (xs: number[]): number[] => xs.map((x) => round(x, 4));

// ---------------------------------------------------------------------------------------
// Figures

interface SizeResult {
  mib: number;
  bytes: number;
  runs: number;
  seconds: number[];
  medianSeconds: number;
  encMiBps: number;
  encClientPeakRssMiB: number | null;
  encServerPeakRssMiB: number;
  dec: { seconds: number[]; medianSeconds: number; MiBps: number; clientPeakRssMiB: number | null; serverPeakRssMiB: number };
  /** dec_client median over enc_client median. */
  decOverEnc: number;
  /** The C reference and node -e 0 alongside each run; ratios are medians of the per-run ratios. */
  reference: { seconds: number[]; medianSeconds: number; nodeSeconds: number[]; ratio: number; floorRatio: number } | null;
  roundTrip: 'ok';
}

interface Report {
  when: string;
  machine: {
    cpu: string;
    cores: number;
    node: string;
    os: string;
    memoryMiB: number;
    loadAverageAtStart: number[];
    loadAverageAtEnd: number[];
  };
  options: { sizesMiB: number[]; runs: number };
  clientRssMethod: string;
  serverRssMethod: string;
  sizes: SizeResult[];
  latency: { runs: number; encClientMs: number; nodeMs: number; ratio: number; encClientSamplesMs: number[]; nodeSamplesMs: number[] };
  keygen: { bytes: number; runs: number; keygenSeconds: number; headSeconds: number; keygenMBps: number; headMBps: number; ratio: number; peakRssMiB: number | null };
  fiveClients: { clients: number; bytesEach: number; runs: number; seconds: number[]; medianSeconds: number };
  capacity: CapacityResult;
  fiveJobs: { jobs: number; mib: number; runs: number; seconds: number[]; medianSeconds: number; reference: { seconds: number[]; medianSeconds: number; ratio: number } | null };
  referenceBuild: string;
  peakRssMiB: number | null;
  tls: TlsResult;
  tinyFrames: TinyFramesResult;
}

// ---------------------------------------------------------------------------------------
// Cleanup: servers stopped, children killed, temp folder removed; on errors and Ctrl-C too.

let tmp: string | null = null;
let cleaning: Promise<void> | null = null;
let interrupted = false;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    killClients(); // first, or a server would wait for the job of a client that is going away
    await stopServers();
    killEverything();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    tmp = null;
  })();
  return cleaning;
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (interrupted) {
      // A second Ctrl-C: no more waiting.
      killEverything();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
      process.exit(130);
    }
    interrupted = true;
    note(`${signal}: stopping the servers and removing the temp folder`);
    void cleanup().finally(() => process.exit(130));
  });
}

process.on('exit', () => {
  // Last resort, synchronous: after a crash nothing of ours may stay behind.
  killEverything();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------
// Measurements

function checkDisk(dir: string, sizesMiB: number[]): void {
  // Text, key, ciphertext and round trip of the largest size at once.
  const need = 4 * Math.max(...sizesMiB) * MIB + 64 * MIB;
  const stats = statfsSync(dir);
  const free = stats.bavail * stats.bsize;
  if (free < need) {
    throw new BenchError(
      `${dir} has ${(free / MIB).toFixed(0)} MiB free; the largest size needs about ${(need / MIB).toFixed(0)} MiB ` +
        `(text, key, ciphertext and round trip). Try smaller --sizes or TMPDIR=elsewhere.`,
    );
  }
}

/** 8 MiB decryptions at once on `dec`, of a text `enc` encrypted with itself as the key: unmeasured. */
async function warmStreaming(dir: string, enc: Server, dec: Server): Promise<void> {
  const [text, cipher] = ['warm-text', 'warm-stream-cipher'].map((name) => join(dir, name));
  await writeRandomText(text, 8 * MIB);
  await runProgram(bin('enc_client'), [text, text, String(enc.port)], { stdout: cipher, what: 'enc_client (streaming warm-up)' });
  await warmUp(dec, bin('dec_client'), [cipher, text, String(dec.port)], 'dec_client, streaming');
  for (const file of [text, cipher]) rmSync(file, { force: true });
}

/** The wall time of `node -e 0`, the start-up no Node program can avoid. */
const bareNode = async (): Promise<number> => (await runProgram('node', ['-e', '0'], { what: 'node -e 0' })).seconds;

/**
 * On `size` MiB, `runs` times: enc_client, the C reference (first or second, alternating),
 * node -e 0 and dec_client on the ciphertext, each round trip checked with cmp.
 */
async function measureSize(dir: string, sizeMiB: number, runs: number, enc: Server, dec: Server, ref: Reference | null): Promise<SizeResult> {
  const bytes = Math.round(sizeMiB * MIB);
  const text = join(dir, `text-${sizeMiB}`);
  const key = join(dir, `key-${sizeMiB}`);
  const cipher = join(dir, `cipher-${sizeMiB}`);
  const back = join(dir, `back-${sizeMiB}`);
  const refOut = join(dir, `ref-${sizeMiB}`);
  try {
    const t0 = performance.now();
    await writeRandomText(text, bytes);
    await writeRandomText(key, bytes);
    note(`${sizeMiB} MiB: text and key written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const times: number[] = [];
    const decTimes: number[] = [];
    const refTimes: number[] = [];
    const nodeTimes: number[] = [];
    let clientPeak: number | null = null;
    let decClientPeak: number | null = null;
    const encPeak = new TreePeak(enc.pid);
    const decPeak = new TreePeak(dec.pid);
    encPeak.start();
    decPeak.start();
    let encServerKiB: number;
    let decServerKiB: number;
    const peak = (was: number | null, now: number | null): number | null => (now === null ? was : Math.max(was ?? 0, now));
    try {
      for (let run = 1; run <= runs; run++) {
        const runReference = async (): Promise<void> => {
          if (!ref) return;
          const result = await runProgram(ref.binary, ['enc', text, key, String(ref.server.port)], { stdout: refOut, what: `the C reference on ${sizeMiB} MiB` });
          refTimes.push(result.seconds);
        };
        if (run % 2 === 0) await runReference();
        const result = await runProgram(bin('enc_client'), [text, key, String(enc.port)], {
          stdout: cipher,
          rss: true,
          what: `enc_client on ${sizeMiB} MiB (run ${run})`,
          context: () => enc.stderr(),
        });
        if (run % 2 === 1) await runReference();
        nodeTimes.push(await bareNode());
        const written = statSync(cipher).size;
        if (written !== bytes + 1) {
          throw new BenchError(`enc_client on ${sizeMiB} MiB wrote ${written} bytes, not ${bytes + 1}\n${enc.stderr()}`);
        }
        if (ref && run === 1) await compareFiles(refOut, cipher, `enc_client and the C reference disagree on ${sizeMiB} MiB`);
        times.push(result.seconds);
        clientPeak = peak(clientPeak, result.peakRssKiB);
        const decRun = await runProgram(bin('dec_client'), [cipher, key, String(dec.port)], {
          stdout: back,
          rss: true,
          what: `dec_client on ${sizeMiB} MiB`,
          context: () => dec.stderr(),
        });
        decTimes.push(decRun.seconds);
        decClientPeak = peak(decClientPeak, decRun.peakRssKiB);
        if (run === 1) await compareFiles(text, back, `the round trip of ${sizeMiB} MiB through enc_client and dec_client differs from the text`);
        const vs = ref ? `, C ${refTimes[run - 1].toFixed(3)} s, node -e 0 ${nodeTimes[run - 1].toFixed(3)} s` : '';
        note(`${sizeMiB} MiB run ${run}/${runs}: enc ${result.seconds.toFixed(3)} s, dec ${decRun.seconds.toFixed(3)} s${vs}`);
      }
    } finally {
      encServerKiB = encPeak.stop();
      decServerKiB = decPeak.stop();
    }

    const medianSeconds = median(times);
    const decMedian = median(decTimes);
    return {
      mib: sizeMiB,
      bytes,
      runs,
      seconds: seconds(times),
      medianSeconds: round(medianSeconds, 4),
      encMiBps: round(sizeMiB / medianSeconds, 1),
      encClientPeakRssMiB: clientPeak === null ? null : round(clientPeak / 1024, 1),
      encServerPeakRssMiB: round(encServerKiB / 1024, 1),
      dec: {
        seconds: seconds(decTimes),
        medianSeconds: round(decMedian, 4),
        MiBps: round(sizeMiB / decMedian, 1),
        clientPeakRssMiB: decClientPeak === null ? null : round(decClientPeak / 1024, 1),
        serverPeakRssMiB: round(decServerKiB / 1024, 1),
      },
      decOverEnc: round(decMedian / medianSeconds, 2),
      reference: ref
        ? {
            seconds: seconds(refTimes),
            medianSeconds: round(median(refTimes), 4),
            nodeSeconds: seconds(nodeTimes),
            ratio: round(median(times.map((x, i) => x / refTimes[i])), 2),
            floorRatio: round(median(times.map((x, i) => x / (refTimes[i] + nodeTimes[i]))), 2),
          }
        : null,
      roundTrip: 'ok',
    };
  } finally {
    for (const file of [text, key, cipher, back, refOut]) rmSync(file, { force: true });
  }
}

interface Reference {
  binary: string;
  server: Server;
}

/** Five enc_clients on 64 MiB each, started together, against five C clients; alternating. */
async function measureFiveJobs(dir: string, runs: number, enc: Server, ref: Reference | null): Promise<Report['fiveJobs']> {
  const bytes = FIVE_JOBS_MIB * MIB;
  const text = join(dir, 'five-text');
  const key = join(dir, 'five-key');
  await writeRandomText(text, bytes);
  await writeRandomText(key, bytes);
  const together = async (command: string, args: string[], what: string): Promise<number> => {
    const t0 = performance.now();
    await Promise.all(Array.from({ length: CLIENTS_AT_ONCE }, (_, i) => runProgram(command, args, { what: `${what} ${i + 1} of ${CLIENTS_AT_ONCE}`, context: () => enc.stderr() })));
    return (performance.now() - t0) / 1000;
  };
  const times: number[] = [];
  const refTimes: number[] = [];
  try {
    for (let run = 1; run <= runs; run++) {
      const reference = async (): Promise<void> => {
        if (ref) refTimes.push(await together(ref.binary, ['enc', text, key, String(ref.server.port)], 'C reference'));
      };
      if (run % 2 === 0) await reference();
      times.push(await together(bin('enc_client'), [text, key, String(enc.port)], 'enc_client'));
      if (run % 2 === 1) await reference();
      note(`five ${FIVE_JOBS_MIB} MiB jobs run ${run}/${runs}: ${times[run - 1].toFixed(3)} s${ref ? `, C ${refTimes[run - 1].toFixed(3)} s` : ''}`);
    }
  } finally {
    rmSync(text, { force: true });
    rmSync(key, { force: true });
  }
  return {
    jobs: CLIENTS_AT_ONCE,
    mib: FIVE_JOBS_MIB,
    runs,
    seconds: seconds(times),
    medianSeconds: round(median(times), 4),
    reference: ref
      ? { seconds: seconds(refTimes), medianSeconds: round(median(refTimes), 4), ratio: round(median(times.map((x, i) => x / refTimes[i])), 2) }
      : null,
  };
}

/** enc_client on plaintext1 against `node -e 0`, alternating, after one unmeasured run of each. */
async function measureLatency(key: string, enc: Server): Promise<Report['latency']> {
  const client = (): Promise<{ seconds: number }> =>
    runProgram(bin('enc_client'), [PLAINTEXT1, key, String(enc.port)], {
      what: 'enc_client on plaintext1',
      context: () => enc.stderr(),
    });
  const bare = (): Promise<{ seconds: number }> => runProgram('node', ['-e', '0'], { what: 'node -e 0' });
  await client();
  await bare();
  const clientMs: number[] = [];
  const nodeMs: number[] = [];
  for (let i = 0; i < LATENCY_RUNS; i++) {
    clientMs.push((await client()).seconds * 1000);
    nodeMs.push((await bare()).seconds * 1000);
  }
  const c = median(clientMs);
  const n = median(nodeMs);
  return {
    runs: LATENCY_RUNS,
    encClientMs: round(c, 2),
    nodeMs: round(n, 2),
    ratio: round(c / n, 2),
    encClientSamplesMs: clientMs.map((x) => round(x, 2)),
    nodeSamplesMs: nodeMs.map((x) => round(x, 2)),
  };
}

/** keygen 100000000 against head -c 100000000 /dev/urandom, both to /dev/null, alternating. */
async function measureKeygen(runs: number): Promise<Report['keygen']> {
  const keygen: number[] = [];
  const head: number[] = [];
  let keygenPeak: number | null = null;
  for (let run = 1; run <= runs; run++) {
    const run_ = await runProgram(bin('keygen'), [String(KEYGEN_LENGTH)], { what: `keygen ${KEYGEN_LENGTH}`, rss: true });
    keygen.push(run_.seconds);
    if (run_.peakRssKiB !== null) keygenPeak = Math.max(keygenPeak ?? 0, run_.peakRssKiB);
    head.push((await runProgram('head', ['-c', String(KEYGEN_LENGTH), '/dev/urandom'], {})).seconds);
    note(`keygen run ${run}/${runs}: keygen ${keygen[run - 1].toFixed(3)} s, head ${head[run - 1].toFixed(3)} s`);
  }
  const k = median(keygen);
  const h = median(head);
  return {
    bytes: KEYGEN_LENGTH,
    runs,
    keygenSeconds: round(k, 4),
    headSeconds: round(h, 4),
    keygenMBps: round(KEYGEN_LENGTH / 1e6 / k, 1),
    headMBps: round(KEYGEN_LENGTH / 1e6 / h, 1),
    ratio: round(k / h, 2),
    peakRssMiB: keygenPeak === null ? null : round(keygenPeak / 1024, 1),
  };
}

/** Five enc_clients started together on plaintext4: the time until the last one exits. */
async function measureFiveClients(dir: string, key: string, runs: number, enc: Server): Promise<Report['fiveClients']> {
  const bytes = statSync(PLAINTEXT4).size;
  const times: number[] = [];
  for (let run = 1; run <= runs; run++) {
    const outputs = Array.from({ length: CLIENTS_AT_ONCE }, (_, i) => join(dir, `five-${i}`));
    const t0 = performance.now();
    await Promise.all(
      outputs.map((out, i) =>
        runProgram(bin('enc_client'), [PLAINTEXT4, key, String(enc.port)], {
          stdout: out,
          what: `enc_client ${i + 1} of ${CLIENTS_AT_ONCE} on plaintext4`,
          context: () => enc.stderr(),
        }),
      ),
    );
    times.push((performance.now() - t0) / 1000);
    // Same text and key: five identical ciphertexts of the text's length.
    await Promise.all(outputs.slice(1).map((out) => compareFiles(outputs[0], out, 'five clients on the same text and key disagree')));
    const size = statSync(outputs[0]).size;
    if (size !== bytes) throw new BenchError(`enc_client on plaintext4 (${bytes} bytes) wrote ${size} bytes`);
    note(`five clients run ${run}/${runs}: ${times[run - 1].toFixed(3)} s`);
  }
  return { clients: CLIENTS_AT_ONCE, bytesEach: bytes, runs, seconds: seconds(times), medianSeconds: round(median(times), 4) };
}

// ---------------------------------------------------------------------------------------
// Output

function table(rows: string[][], rightAligned: boolean[]): string {
  const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => row[col].length)));
  return rows
    .map((row) => row.map((cell, col) => (rightAligned[col] ? cell.padStart(widths[col]) : cell.padEnd(widths[col]))).join('  ').trimEnd())
    .join('\n');
}

function render(report: Report): string {
  const f = (x: number | null, digits = 1): string => (x === null ? '?' : x.toFixed(digits));
  const rows = [
    ['size', 'enc MiB/s', 'enc s', 'C ref s', 'node -e 0 s', '/C', '/(C+node)', 'dec s', 'dec/enc', 'client RSS', 'server RSS', 'dec client RSS', 'dec server RSS'],
    ...report.sizes.map((s) => [
      `${s.mib} MiB`,
      f(s.encMiBps),
      f(s.medianSeconds, 3),
      f(s.reference?.medianSeconds ?? null, 3),
      f(s.reference ? median(s.reference.nodeSeconds) : null, 3),
      f(s.reference?.ratio ?? null, 2),
      f(s.reference?.floorRatio ?? null, 2),
      f(s.dec.medianSeconds, 3),
      f(s.decOverEnc, 2),
      `${f(s.encClientPeakRssMiB)} MiB`,
      `${f(s.encServerPeakRssMiB)} MiB`,
      `${f(s.dec.clientPeakRssMiB)} MiB`,
      `${f(s.dec.serverPeakRssMiB)} MiB`,
    ]),
  ];
  const { latency: l, keygen: k, fiveClients: five, fiveJobs: jobs, machine: m } = report;
  const verdict = (ratio: number | null | undefined, target: number): string =>
    ratio === null || ratio === undefined ? 'no figure' : `${ratio.toFixed(2)} ${ratio <= target ? '<=' : '>'} ${target}: ${ratio <= target ? 'met' : 'NOT met'}`;
  const targets = [
    ...report.sizes.map((s) => `  one ${s.mib} MiB job / (C reference + node -e 0): ${verdict(s.reference?.floorRatio, TARGET.floor)}`),
    `  five ${jobs.mib} MiB jobs at once / five C jobs: ${verdict(jobs.reference?.ratio, TARGET.five)}`,
    `  keygen / head -c /dev/urandom: ${verdict(k.ratio, TARGET.keygen)}`,
    `  37-byte message / node -e 0: ${verdict(l.ratio, TARGET.latency)}`,
    `  largest peak RSS of any process: ${report.peakRssMiB === null ? 'no figure' : `${report.peakRssMiB.toFixed(1)} MiB ${report.peakRssMiB <= TARGET.rssMiB ? '<=' : '>'} ${TARGET.rssMiB} MiB: ${report.peakRssMiB <= TARGET.rssMiB ? 'met' : 'NOT met'}`}`,
    ...report.sizes.map((s) => `  decryption / encryption at ${s.mib} MiB: ${verdict(s.decOverEnc, TARGET.decOverEnc)}`),
  ];
  return [
    'enc_client | enc_server, the C reference and node -e 0 alternating, then dec_client | dec_server on the',
    'ciphertext; medians of the runs (ratios: medians of the per-run ratios); peak RSS the largest of the runs',
    '(server: the largest single process, main or worker).',
    '',
    table(rows, rows[0].map(() => true)),
    '',
    `small message: enc_client plaintext1 (37 bytes) ${f(l.encClientMs, 1)} ms, node -e 0 ${f(l.nodeMs, 1)} ms ` +
      `(medians of ${l.runs}): ${f(l.ratio, 2)}x`,
    `keygen ${KEYGEN_LENGTH} > /dev/null: ${f(k.keygenMBps)} MB/s (${f(k.keygenSeconds, 3)} s, peak RSS ${f(k.peakRssMiB)} MiB); ` +
      `head -c ${KEYGEN_LENGTH} /dev/urandom: ${f(k.headMBps)} MB/s (${f(k.headSeconds, 3)} s) ` +
      `(medians of ${k.runs}): ${f(k.ratio, 2)}x the time`,
    `TLS: enc_client --tls-ca | enc_server --tls-cert on ${report.tls.mib} MiB: ${f(report.tls.tlsMiBps)} MiB/s, ` +
      `plain ${f(report.tls.plainMiBps)} MiB/s (medians of ${report.tls.runs}, alternating): ${f(report.tls.ratio, 2)}x (target 0.7x)`,
    renderTlsCeiling(report.tls),
    `five enc_clients at once on plaintext4 (${five.bytesEach} bytes each): all done in ${f(five.medianSeconds, 3)} s ` +
      `(median of ${five.runs})`,
    renderCapacity(report.capacity),
    renderTinyFrames(report.tinyFrames),
    `five ${jobs.mib} MiB jobs at once: ${f(jobs.medianSeconds, 3)} s; C reference ${f(jobs.reference?.medianSeconds ?? null, 3)} s ` +
      `(medians of ${jobs.runs})`,
    '',
    `targets (issue 10), from this run; C reference: ${report.referenceBuild}`,
    ...targets,
    '',
    `machine: ${m.cpu}, ${m.cores} cores, ${m.memoryMiB} MiB, ${m.os}, node ${m.node}`,
    `load average at start ${m.loadAverageAtStart.map((x) => x.toFixed(2)).join(' ')}, ` +
      `at end ${m.loadAverageAtEnd.map((x) => x.toFixed(2)).join(' ')}`,
    `peak RSS measured with ${report.clientRssMethod} (clients) and ${report.serverRssMethod} (servers)`,
    ENVIRONMENT_NOTE,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const options = parseOptions();
  const loadAtStart = loadavg();
  // In memory where there is /dev/shm, so that disk write-back does not land on whichever side runs second.
  const parent = process.env.TMPDIR ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
  tmp = mkdtempSync(join(parent, 'otp-bench-'));
  const dir = tmp;
  checkDisk(dir, options.sizes);
  configure(dir);
  note(ENVIRONMENT_NOTE);
  if (options.against !== null) {
    const reference = buildReference(REFERENCE_SOURCE, dir);
    const report = await measureAgainst(ROOT, dir, options.against, options.runs, reference.binary, note);
    await cleanup();
    process.stdout.write(`${renderAgainst(report)}\n${ENVIRONMENT_NOTE}\n`);
    if (options.json) writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  note(`temp folder ${dir}; sizes ${options.sizes.join(', ')} MiB, ${options.runs} run(s) each`);

  const enc = await Server.start(bin('enc_server'), 'enc_server');
  const dec = await Server.start(bin('dec_server'), 'dec_server');
  note(`enc_server on port ${enc.port} (pid ${enc.pid}), dec_server on port ${dec.port} (pid ${dec.pid})`);
  const built = buildReference(REFERENCE_SOURCE, dir);
  note(built.binary ? `C reference: ${built.why}` : `C reference: none (${built.why}); no ratios against it`);
  const ref: Reference | null = built.binary
    ? { binary: built.binary, server: await Server.start(built.binary, 'C reference server', ['serve', 'enc']) }
    : null;

  const smallKey = join(dir, 'key-small');
  await writeRandomText(smallKey, SMALL_KEY);

  // Warm-up, unmeasured: every worker of both servers serves once before anything counts.
  const warmCipher = join(dir, 'warm-cipher');
  await runProgram(bin('enc_client'), [PLAINTEXT1, smallKey, String(enc.port)], { stdout: warmCipher, what: 'enc_client (warm-up)' });
  await warmUp(enc, bin('enc_client'), [PLAINTEXT1, smallKey, String(enc.port)], 'enc_client');
  await warmUp(dec, bin('dec_client'), [warmCipher, smallKey, String(dec.port)], 'dec_client');

  note('small-message latency');
  const latency = await measureLatency(smallKey, enc);
  note('five clients at once');
  const fiveClients = await measureFiveClients(dir, smallKey, options.runs, enc);
  note('keygen');
  const keygen = await measureKeygen(options.runs);
  note('capacity: tiny jobs a second, against the C reference');
  const capacity = await measureCapacity({ runs: options.runs, note, reference: built.binary ?? undefined });
  note('tiny frames: server CPU per byte received');
  const tinyFrames = await measureTinyFrames(dir, enc, bin('enc_client'), options.runs, note);

  note(`five ${FIVE_JOBS_MIB} MiB jobs at once`);
  const fiveJobs = await measureFiveJobs(dir, options.runs, enc, ref);

  // The five jobs above ran enc_server's workers through streaming jobs; dec_server's have
  // served only tiny ones, and a worker's first streaming jobs run slower (the JIT), which
  // made decryption look slower than encryption at the first size.
  note('warming dec_server with streaming jobs');
  await warmStreaming(dir, enc, dec);

  const sizes: SizeResult[] = [];
  for (const size of options.sizes) sizes.push(await measureSize(dir, size, options.runs, enc, dec, ref));
  const peaks = [
    keygen.peakRssMiB,
    ...sizes.flatMap((s) => [s.encClientPeakRssMiB, s.encServerPeakRssMiB, s.dec.clientPeakRssMiB, s.dec.serverPeakRssMiB]),
  ].filter((x): x is number => x !== null);
  // At 256 MiB, or the largest size asked for below it.
  const tlsSize = options.sizes.includes(256) ? 256 : Math.max(...options.sizes.filter((s) => s < 256), Math.min(...options.sizes));
  note(`TLS against plain at ${tlsSize} MiB`);
  const tls = await measureTls(ROOT, dir, tlsSize, options.runs, enc, note);

  const cpuList = cpus();
  const report: Report = {
    when: new Date().toISOString(),
    machine: {
      cpu: cpuList[0]?.model.trim() ?? 'unknown',
      cores: cpuList.length,
      node: process.version,
      os: `${osType()} ${release()}`,
      memoryMiB: Math.round(totalmem() / MIB),
      loadAverageAtStart: loadAtStart.map((x) => round(x, 2)),
      loadAverageAtEnd: loadavg().map((x) => round(x, 2)),
    },
    options: { sizesMiB: options.sizes, runs: options.runs },
    clientRssMethod: clientRssMethod === 'gnu-time' ? '/usr/bin/time -f %M' : '/proc/PID/status VmHWM polled every 20 ms',
    serverRssMethod: '/proc VmRSS polled every 20 ms and VmHWM reset per size',
    sizes,
    latency,
    keygen,
    fiveClients,
    capacity,
    fiveJobs,
    referenceBuild: built.why,
    peakRssMiB: peaks.length ? Math.max(...peaks) : null,
    tls,
    tinyFrames,
  };
  await cleanup();
  process.stdout.write(`${render(report)}\n`);
  if (options.json) {
    writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
    note(`figures written to ${options.json}`);
  }
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    await cleanup();
    if (interrupted) return; // the signal handler exits
    if (err instanceof BenchError) process.stderr.write(`bench: error: ${err.message}\n`);
    else process.stderr.write(`bench: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
