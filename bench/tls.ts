// The TLS row of npm run bench: enc_client --tls-ca through enc_server --tls-cert against the same job in plain TCP, runs alternating.
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { makeCerts } from '../test/helpers/certs.js';
import { BenchError, median, MIB, runProgram, Server, writeRandomText } from './lib.js';

export interface TlsResult {
  mib: number;
  runs: number;
  plainMiBps: number;
  tlsMiBps: number;
  /** TLS throughput over plain; the target is at least 0.7. */
  ratio: number;
}

/** `sizeMiB` of text through a plain server and a TLS one started for the purpose, `runs` times each, alternating. */
export async function measureTls(root: string, dir: string, sizeMiB: number, runs: number, plain: Server, note: (line: string) => void): Promise<TlsResult> {
  const certs = makeCerts(dir);
  const secure = await Server.start(join(root, 'enc_server'), 'enc_server (TLS)', ['--tls-cert', certs.serverCert, '--tls-key', certs.serverKey]);
  const bytes = Math.round(sizeMiB * MIB);
  const text = join(dir, `tls-text-${sizeMiB}`);
  const key = join(dir, `tls-key-${sizeMiB}`);
  const cipher = join(dir, `tls-cipher-${sizeMiB}`);
  await writeRandomText(text, bytes);
  await writeRandomText(key, bytes);
  const once = async (server: Server, extra: string[], what: string): Promise<number> => {
    const result = await runProgram(join(root, 'enc_client'), [text, key, String(server.port), ...extra], { stdout: cipher, what, context: () => server.stderr() });
    if (statSync(cipher).size !== bytes + 1) throw new BenchError(`${what} wrote ${statSync(cipher).size} bytes, not ${bytes + 1}`);
    return result.seconds;
  };
  const plainTimes: number[] = [];
  const tlsTimes: number[] = [];
  try {
    // Warm-up, unmeasured: the TLS server is new, and each of its workers runs its first
    // streaming jobs some 200 ms slower (measured on 64 MiB jobs); the plain server's
    // workers have run the earlier measurements' jobs by now. Five at once, to reach them all.
    const warmText = join(dir, 'tls-warm');
    await writeRandomText(warmText, 8 * MIB);
    await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        runProgram(join(root, 'enc_client'), [warmText, warmText, String(secure.port), '--tls-ca', certs.ca], { what: `enc_client --tls-ca (warm-up ${i + 1})` }),
      ),
    );
    rmSync(warmText, { force: true });
    for (let run = 1; run <= runs; run++) {
      plainTimes.push(await once(plain, [], `enc_client on ${sizeMiB} MiB, plain (run ${run})`));
      tlsTimes.push(await once(secure, ['--tls-ca', certs.ca], `enc_client --tls-ca on ${sizeMiB} MiB (run ${run})`));
      note(`TLS ${sizeMiB} MiB run ${run}/${runs}: plain ${plainTimes.at(-1)!.toFixed(3)} s, TLS ${tlsTimes.at(-1)!.toFixed(3)} s`);
    }
  } finally {
    await secure.stop();
    for (const file of [text, key, cipher]) rmSync(file, { force: true });
  }
  const plainMiBps = sizeMiB / median(plainTimes);
  const tlsMiBps = sizeMiB / median(tlsTimes);
  return { mib: sizeMiB, runs, plainMiBps: Number(plainMiBps.toFixed(1)), tlsMiBps: Number(tlsMiBps.toFixed(1)), ratio: Number((tlsMiBps / plainMiBps).toFixed(2)) };
}
