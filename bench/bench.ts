// npm run bench [-- --sizes 1,16,64 --runs 3 --json FILE]
// Throughput and memory of the built programs: enc_client through enc_server on random
// texts of each size (with a dec_client round trip to check them), small-message latency
// against a bare `node -e 0`, keygen against `head -c N /dev/urandom`, and five clients at
// once. Inputs go to a temp folder that is removed at the end, whatever happens.
// Peak RSS of a client comes from GNU /usr/bin/time (%M) when there is one, else from
// polling /proc/PID/status VmHWM; BENCH_NO_TIME=1 forces the polling.
import { mkdtempSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem, type as osType } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  BenchError,
  clientRssMethod,
  compareFiles,
  configure,
  killClients,
  killEverything,
  median,
  MIB,
  runProgram,
  Server,
  stopServers,
  TreePeak,
  writeRandomText,
} from './lib.js';
import { measureCapacity, renderCapacity, type CapacityResult } from './capacity.js';
import { measureTls, type TlsResult } from './tls.js';

const ROOT = join(__dirname, '..');
const bin = (name: string): string => join(ROOT, name);
const PLAINTEXT1 = join(ROOT, 'test', 'fixtures', 'plaintext1');
const PLAINTEXT4 = join(ROOT, 'test', 'fixtures', 'plaintext4');
const LATENCY_RUNS = 20;
const KEYGEN_LENGTH = 100_000_000;
const SMALL_KEY = 70_000;
const CLIENTS_AT_ONCE = 5;

const USAGE = `usage: npm run bench -- [--sizes MIB,MIB,...] [--runs N] [--json FILE]
  --sizes  text sizes in MiB (default 1,16,64,256,1024)
  --runs   runs per measurement, the median is reported (default 3)
  --json   also write the figures to FILE as JSON
`;

interface Options {
  sizes: number[];
  runs: number;
  json: string | null;
}

function parseOptions(): Options {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        sizes: { type: 'string' },
        runs: { type: 'string' },
        json: { type: 'string' },
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
  const runs = values.runs === undefined ? 3 : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new BenchError(`--runs: '${values.runs}' is not a whole number from 1\n${USAGE}`);
  // npm run starts scripts in the project root; a relative FILE is meant from where npm was run.
  const json = values.json === undefined ? null : resolve(process.env.INIT_CWD ?? process.cwd(), values.json);
  return { sizes: sizes.map(Number), runs, json };
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
  dec: { seconds: number; MiBps: number; clientPeakRssMiB: number | null; serverPeakRssMiB: number };
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
  keygen: { bytes: number; runs: number; keygenSeconds: number; headSeconds: number; keygenMBps: number; headMBps: number; ratio: number };
  fiveClients: { clients: number; bytesEach: number; runs: number; seconds: number[]; medianSeconds: number };
  capacity: CapacityResult;
  tls: TlsResult;
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

/** enc_client on `size` MiB, `runs` times, then one dec_client round trip checked with cmp. */
async function measureSize(dir: string, sizeMiB: number, runs: number, enc: Server, dec: Server): Promise<SizeResult> {
  const bytes = Math.round(sizeMiB * MIB);
  const text = join(dir, `text-${sizeMiB}`);
  const key = join(dir, `key-${sizeMiB}`);
  const cipher = join(dir, `cipher-${sizeMiB}`);
  const back = join(dir, `back-${sizeMiB}`);
  try {
    const t0 = performance.now();
    await writeRandomText(text, bytes);
    await writeRandomText(key, bytes);
    note(`${sizeMiB} MiB: text and key written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const times: number[] = [];
    let clientPeak: number | null = null;
    const serverPeak = new TreePeak(enc.pid);
    serverPeak.start();
    let encServerKiB: number;
    try {
      for (let run = 1; run <= runs; run++) {
        const result = await runProgram(bin('enc_client'), [text, key, String(enc.port)], {
          stdout: cipher,
          rss: true,
          what: `enc_client on ${sizeMiB} MiB (run ${run})`,
          context: () => enc.stderr(),
        });
        const written = statSync(cipher).size;
        if (written !== bytes + 1) {
          throw new BenchError(`enc_client on ${sizeMiB} MiB wrote ${written} bytes, not ${bytes + 1}\n${enc.stderr()}`);
        }
        times.push(result.seconds);
        if (result.peakRssKiB !== null) clientPeak = Math.max(clientPeak ?? 0, result.peakRssKiB);
        note(`${sizeMiB} MiB: enc run ${run}/${runs}: ${result.seconds.toFixed(3)} s, ${(sizeMiB / result.seconds).toFixed(1)} MiB/s`);
      }
    } finally {
      encServerKiB = serverPeak.stop();
    }

    const decPeak = new TreePeak(dec.pid);
    decPeak.start();
    let decRun;
    let decServerKiB: number;
    try {
      decRun = await runProgram(bin('dec_client'), [cipher, key, String(dec.port)], {
        stdout: back,
        rss: true,
        what: `dec_client on ${sizeMiB} MiB`,
        context: () => dec.stderr(),
      });
    } finally {
      decServerKiB = decPeak.stop();
    }
    await compareFiles(text, back, `the round trip of ${sizeMiB} MiB through enc_client and dec_client differs from the text`);
    note(`${sizeMiB} MiB: dec_client round trip ok, ${decRun.seconds.toFixed(3)} s`);

    const medianSeconds = median(times);
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
        seconds: round(decRun.seconds, 4),
        MiBps: round(sizeMiB / decRun.seconds, 1),
        clientPeakRssMiB: decRun.peakRssKiB === null ? null : round(decRun.peakRssKiB / 1024, 1),
        serverPeakRssMiB: round(decServerKiB / 1024, 1),
      },
      roundTrip: 'ok',
    };
  } finally {
    for (const file of [text, key, cipher, back]) rmSync(file, { force: true });
  }
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
  for (let run = 1; run <= runs; run++) {
    keygen.push((await runProgram(bin('keygen'), [String(KEYGEN_LENGTH)], { what: `keygen ${KEYGEN_LENGTH}` })).seconds);
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
    ['size', 'enc MiB/s', 'median s', 'runs', 'client peak RSS', 'server peak RSS', 'dec MiB/s', 'dec client RSS', 'dec server RSS', 'round trip'],
    ...report.sizes.map((s) => [
      `${s.mib} MiB`,
      f(s.encMiBps),
      f(s.medianSeconds, 3),
      String(s.runs),
      `${f(s.encClientPeakRssMiB)} MiB`,
      `${f(s.encServerPeakRssMiB)} MiB`,
      f(s.dec.MiBps),
      `${f(s.dec.clientPeakRssMiB)} MiB`,
      `${f(s.dec.serverPeakRssMiB)} MiB`,
      s.roundTrip,
    ]),
  ];
  const { latency: l, keygen: k, fiveClients: five, machine: m } = report;
  return [
    'enc_client | enc_server: median wall time of each size; peak RSS is the largest of the runs',
    '(server: the largest single process, main or worker). dec_client | dec_server: one run.',
    '',
    table(rows, [true, true, true, true, true, true, true, true, true, false]),
    '',
    `small message: enc_client plaintext1 (37 bytes) ${f(l.encClientMs, 1)} ms, node -e 0 ${f(l.nodeMs, 1)} ms ` +
      `(medians of ${l.runs}): ${f(l.ratio, 2)}x`,
    `keygen ${KEYGEN_LENGTH} > /dev/null: ${f(k.keygenMBps)} MB/s (${f(k.keygenSeconds, 3)} s); ` +
      `head -c ${KEYGEN_LENGTH} /dev/urandom: ${f(k.headMBps)} MB/s (${f(k.headSeconds, 3)} s) ` +
      `(medians of ${k.runs}): ${f(k.ratio, 2)}x the time`,
    `TLS: enc_client --tls-ca | enc_server --tls-cert on ${report.tls.mib} MiB: ${f(report.tls.tlsMiBps)} MiB/s, ` +
      `plain ${f(report.tls.plainMiBps)} MiB/s (medians of ${report.tls.runs}, alternating): ${f(report.tls.ratio, 2)}x (target 0.7x)`,
    `five enc_clients at once on plaintext4 (${five.bytesEach} bytes each): all done in ${f(five.medianSeconds, 3)} s ` +
      `(median of ${five.runs})`,
    renderCapacity(report.capacity),
    '',
    `machine: ${m.cpu}, ${m.cores} cores, ${m.memoryMiB} MiB, ${m.os}, node ${m.node}`,
    `load average at start ${m.loadAverageAtStart.map((x) => x.toFixed(2)).join(' ')}, ` +
      `at end ${m.loadAverageAtEnd.map((x) => x.toFixed(2)).join(' ')}`,
    `peak RSS measured with ${report.clientRssMethod} (clients) and ${report.serverRssMethod} (servers)`,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const options = parseOptions();
  const loadAtStart = loadavg();
  tmp = mkdtempSync(join(tmpdir(), 'otp-bench-'));
  const dir = tmp;
  checkDisk(dir, options.sizes);
  configure(dir);
  note(`temp folder ${dir}; sizes ${options.sizes.join(', ')} MiB, ${options.runs} run(s) each`);

  const enc = await Server.start(bin('enc_server'), 'enc_server');
  const dec = await Server.start(bin('dec_server'), 'dec_server');
  note(`enc_server on port ${enc.port} (pid ${enc.pid}), dec_server on port ${dec.port} (pid ${dec.pid})`);

  const smallKey = join(dir, 'key-small');
  await writeRandomText(smallKey, SMALL_KEY);

  // Warm-up, unmeasured: every worker of both servers serves once before anything counts.
  const warm = (server: Server, client: string, input: string): Promise<unknown> =>
    Promise.all(
      Array.from({ length: CLIENTS_AT_ONCE }, () =>
        runProgram(bin(client), [input, smallKey, String(server.port)], { what: `${client} (warm-up)`, context: () => server.stderr() }),
      ),
    );
  const warmCipher = join(dir, 'warm-cipher');
  await runProgram(bin('enc_client'), [PLAINTEXT1, smallKey, String(enc.port)], { stdout: warmCipher, what: 'enc_client (warm-up)' });
  await warm(enc, 'enc_client', PLAINTEXT1);
  await warm(dec, 'dec_client', warmCipher);

  note('small-message latency');
  const latency = await measureLatency(smallKey, enc);
  note('five clients at once');
  const fiveClients = await measureFiveClients(dir, smallKey, options.runs, enc);
  note('keygen');
  const keygen = await measureKeygen(options.runs);
  note('capacity: tiny jobs a second, against the C reference');
  const capacity = await measureCapacity({ runs: options.runs, note });

  const sizes: SizeResult[] = [];
  for (const size of options.sizes) sizes.push(await measureSize(dir, size, options.runs, enc, dec));
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
    tls,
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
