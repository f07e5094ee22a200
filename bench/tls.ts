// The TLS row of npm run bench: enc_client --tls-ca through enc_server --tls-cert against the same job in plain TCP, and what node:tls alone costs for the same bytes; runs alternating.
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { makeCerts } from '../test/helpers/certs.js';
import { BenchError, median, MIB, runProgram, Server, treeCpuSeconds, warmUp, writeRandomText } from './lib.js';

/** One way of moving the job's bytes: medians of its runs. */
export interface TlsWay {
  seconds: number;
  /** User + system time of the client, and of the server's processes; null without GNU time. */
  clientCpu: number | null;
  serverCpu: number | null;
}

export interface TlsResult {
  mib: number;
  runs: number;
  plainMiBps: number;
  tlsMiBps: number;
  /** TLS throughput over plain; the target is at least 0.7. */
  ratio: number;
  /** otp's job, plain and TLS; node:net and node:tls alone (bench/tls-floor-peer.ts): the same bytes each way, no work, no files. */
  ways: { plain: TlsWay; tls: TlsWay; tcpAlone: TlsWay; tlsAlone: TlsWay };
  /** The most `ratio` could be: a TLS job takes at least as long as node:tls alone moving its bytes. */
  ceiling: number;
}

/** `sizeMiB` of text through a plain server and a TLS one started for the purpose, `runs` times each, alternating. */
export async function measureTls(root: string, dir: string, sizeMiB: number, runs: number, plain: Server, note: (line: string) => void): Promise<TlsResult> {
  const certs = makeCerts(dir);
  const peer = join(dir, 'tls-floor-peer.js');
  buildSync({ entryPoints: [join(root, 'bench', 'tls-floor-peer.ts')], bundle: true, platform: 'node', format: 'cjs', minify: true, outfile: peer, logLevel: 'warning' });
  const secure = await Server.start(join(root, 'enc_server'), 'enc_server (TLS)', ['--tls-cert', certs.serverCert, '--tls-key', certs.serverKey]);
  const tcpAlone = await Server.start(process.execPath, 'node:net alone (server)', [peer, 'server']);
  const tlsAlone = await Server.start(process.execPath, 'node:tls alone (server)', [peer, 'server', certs.serverCert, certs.serverKey]);
  const bytes = Math.round(sizeMiB * MIB);
  const text = join(dir, `tls-text-${sizeMiB}`);
  const key = join(dir, `tls-key-${sizeMiB}`);
  const cipher = join(dir, `tls-cipher-${sizeMiB}`);
  await writeRandomText(text, bytes);
  await writeRandomText(key, bytes);
  /** One client run against `server`, with the CPU both sides spent on it. */
  const measure = async (server: Server, command: string, args: string[], what: string, stdout?: string): Promise<TlsWay> => {
    const before = treeCpuSeconds(server.pid);
    const result = await runProgram(command, args, { stdout, cpu: true, what, context: () => server.stderr() });
    return { seconds: result.seconds, clientCpu: result.cpuSeconds, serverCpu: treeCpuSeconds(server.pid) - before };
  };
  const job = async (server: Server, extra: string[], what: string): Promise<TlsWay> => {
    const sample = await measure(server, join(root, 'enc_client'), [text, key, String(server.port), ...extra], what, cipher);
    if (statSync(cipher).size !== bytes + 1) throw new BenchError(`${what} wrote ${statSync(cipher).size} bytes, not ${bytes + 1}`);
    return sample;
  };
  const alone = (server: Server, extra: string[], what: string): Promise<TlsWay> =>
    measure(server, process.execPath, [peer, 'client', String(bytes), ...extra, String(server.port)], what);
  const samples: Record<keyof TlsResult['ways'], TlsWay[]> = { plain: [], tls: [], tcpAlone: [], tlsAlone: [] };
  try {
    // Warm-up, unmeasured: the TLS server is new, and each of its workers runs its first
    // streaming jobs some 200 ms slower (measured on 64 MiB jobs); the plain server's
    // workers have run the earlier measurements' jobs by now.
    const warmText = join(dir, 'tls-warm');
    await writeRandomText(warmText, 8 * MIB);
    await warmUp(secure, join(root, 'enc_client'), [warmText, warmText, String(secure.port), '--tls-ca', certs.ca], 'enc_client --tls-ca');
    rmSync(warmText, { force: true });
    for (let run = 1; run <= runs; run++) {
      samples.plain.push(await job(plain, [], `enc_client on ${sizeMiB} MiB, plain (run ${run})`));
      samples.tls.push(await job(secure, ['--tls-ca', certs.ca], `enc_client --tls-ca on ${sizeMiB} MiB (run ${run})`));
      samples.tcpAlone.push(await alone(tcpAlone, [], `node:net alone on ${sizeMiB} MiB (run ${run})`));
      samples.tlsAlone.push(await alone(tlsAlone, [certs.ca], `node:tls alone on ${sizeMiB} MiB (run ${run})`));
      const last = (way: keyof typeof samples): string => `${samples[way].at(-1)!.seconds.toFixed(3)} s`;
      note(`TLS ${sizeMiB} MiB run ${run}/${runs}: plain ${last('plain')}, TLS ${last('tls')}, node:net alone ${last('tcpAlone')}, node:tls alone ${last('tlsAlone')}`);
    }
  } finally {
    await secure.stop();
    await tcpAlone.stop();
    await tlsAlone.stop();
    for (const file of [text, key, cipher]) rmSync(file, { force: true });
  }
  const medianOf = (values: (number | null)[], digits: number): number | null =>
    values.every((x) => x !== null) ? Number(median(values as number[]).toFixed(digits)) : null;
  const medians = (list: TlsWay[]): TlsWay => ({
    seconds: medianOf(list.map((sample) => sample.seconds), 3)!,
    clientCpu: medianOf(list.map((sample) => sample.clientCpu), 2),
    serverCpu: medianOf(list.map((sample) => sample.serverCpu), 2),
  });
  const ways = { plain: medians(samples.plain), tls: medians(samples.tls), tcpAlone: medians(samples.tcpAlone), tlsAlone: medians(samples.tlsAlone) };
  return {
    mib: sizeMiB,
    runs,
    plainMiBps: Number((sizeMiB / ways.plain.seconds).toFixed(1)),
    tlsMiBps: Number((sizeMiB / ways.tls.seconds).toFixed(1)),
    ratio: Number((ways.plain.seconds / ways.tls.seconds).toFixed(2)),
    ways,
    ceiling: Number((ways.plain.seconds / ways.tlsAlone.seconds).toFixed(2)),
  };
}

/** The lines under the TLS row: each way's wall and CPU time, and the ceiling they put on the ratio. */
export function renderTlsCeiling(t: TlsResult): string {
  const cpu = (w: TlsWay): string => (w.clientCpu === null || w.serverCpu === null ? '' : ` (CPU: client ${w.clientCpu.toFixed(2)} s, server ${w.serverCpu.toFixed(2)} s)`);
  const way = (name: string, w: TlsWay): string => `${name} ${w.seconds.toFixed(3)} s${cpu(w)}`;
  const lines = [
    `  otp: ${way('plain', t.ways.plain)}, ${way('TLS', t.ways.tls)}`,
    `  the same bytes, no work: ${way('node:net alone', t.ways.tcpAlone)}, ${way('node:tls alone', t.ways.tlsAlone)}`,
  ];
  lines.push(`  ceiling: a TLS job takes at least as long as node:tls alone moving its bytes: at most ${t.ceiling.toFixed(2)}x`);
  return lines.join('\n');
}
