// npm run bench -- --against REV: this tree's programs against those of git revision REV, built in a scratch worktree, side by side in one run on the same files, alternating which goes first.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { makeCerts } from '../test/helpers/certs.js';
import { tinyJobs } from './capacity.js';
import { BenchError, median, MIB, runProgram, Server, TreePeak, treeCpuSeconds, writeRandomText } from './lib.js';

/** One build: its programs, and its servers once started. */
interface Side {
  label: string;
  root: string;
  enc: Server | null;
  tls: Server | null;
}

/** Per side, per measure: the samples of every run. */
type Samples = Record<string, Record<string, number[]>>;

export interface AgainstReport {
  base: string;
  runs: number;
  /** measure → side → median. */
  medians: Record<string, Record<string, number>>;
  /** measure → median over the runs of this tree's figure over the base's. */
  ratios: Record<string, number>;
}

const bin = (side: Side, name: string): string => join(side.root, name);

/** Checks REV out into a scratch worktree, with this tree's node_modules, and builds it; returns its root. */
function buildBase(root: string, rev: string, note: (line: string) => void): { dir: string; label: string; remove(): void } {
  const sha = execFileSync('git', ['-C', root, 'rev-parse', '--verify', `${rev}^{commit}`], { encoding: 'utf8' }).trim();
  const dir = mkdtempSync(join(tmpdir(), `otp-against-${sha.slice(0, 7)}-`));
  rmSync(dir, { recursive: true });
  execFileSync('git', ['-C', root, 'worktree', 'add', '--detach', '--quiet', dir, sha], { stdio: ['ignore', 'ignore', 'inherit'] });
  const remove = (): void => {
    try {
      execFileSync('git', ['-C', root, 'worktree', 'remove', '--force', dir], { stdio: 'ignore' });
    } catch {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
    note(`building ${rev} (${sha.slice(0, 7)}) in ${dir}`);
    execFileSync(join(dir, 'compileall'), [], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
    if (!existsSync(join(dir, 'enc_server'))) throw new BenchError(`${rev} built no enc_server`);
  } catch (err) {
    remove();
    throw err;
  }
  return { dir, label: `${rev} (${sha.slice(0, 7)})`, remove };
}

/**
 * Runs `measure` once per side per run, the side that goes first alternating from run to
 * run, and keeps each sample under its side's label.
 */
async function alternate(sides: Side[], runs: number, samples: Samples, name: string, measure: (side: Side) => Promise<number | Record<string, number>>): Promise<void> {
  for (let run = 0; run < runs; run++) {
    const order = run % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) {
      const got = await measure(side);
      const named = typeof got === 'number' ? { [name]: got } : got;
      for (const [measureName, value] of Object.entries(named)) {
        ((samples[measureName] ??= {})[side.label] ??= []).push(value);
      }
    }
  }
}

export async function measureAgainst(root: string, dir: string, rev: string, runs: number, reference: string | null, note: (line: string) => void): Promise<AgainstReport> {
  const base = buildBase(root, rev, note);
  const sides: Side[] = [
    { label: 'this tree', root, enc: null, tls: null },
    { label: base.label, root: base.dir, enc: null, tls: null },
  ];
  const samples: Samples = {};
  const certs = makeCerts(dir);
  const ref = reference ? await Server.start(reference, 'C reference server', ['serve', 'enc']) : null;
  try {
    for (const side of sides) {
      side.enc = await Server.start(bin(side, 'enc_server'), `enc_server (${side.label})`);
      side.tls = await Server.start(bin(side, 'enc_server'), `enc_server --tls-cert (${side.label})`, ['--tls-cert', certs.serverCert, '--tls-key', certs.serverKey]);
    }
    const files: Record<number, { text: string; key: string; out: string }> = {};
    for (const mib of [8, 64, 256]) {
      files[mib] = { text: join(dir, `against-text-${mib}`), key: join(dir, `against-key-${mib}`), out: join(dir, `against-out-${mib}`) };
      await writeRandomText(files[mib].text, mib * MIB);
      await writeRandomText(files[mib].key, mib * MIB);
    }
    // Warm-up, unmeasured: five jobs at once reach every worker of each server.
    for (const side of sides) {
      for (const server of [side.enc!, side.tls!]) {
        const tls = server === side.tls ? ['--tls-ca', certs.ca] : [];
        await Promise.all(Array.from({ length: 5 }, () => runProgram(bin(side, 'enc_client'), [files[8].text, files[8].key, String(server.port), ...tls], { what: `warm-up of ${server.name}` })));
      }
    }

    /** One job on `mib` MiB: its wall time, the CPU of the server's processes, the peaks of both sides' memory. */
    const job = async (side: Side, mib: number, tls: boolean): Promise<Record<string, number>> => {
      const server = tls ? side.tls! : side.enc!;
      const f = files[mib];
      const peak = new TreePeak(server.pid);
      peak.start();
      const cpuBefore = treeCpuSeconds(server.pid);
      const args = [f.text, f.key, String(server.port), ...(tls ? ['--tls-ca', certs.ca] : [])];
      const run = await runProgram(bin(side, 'enc_client'), args, { stdout: f.out, rss: true, cpu: true, what: `enc_client on ${mib} MiB (${side.label})`, context: () => server.stderr() });
      const serverCpu = treeCpuSeconds(server.pid) - cpuBefore;
      const serverPeak = peak.stop();
      const what = `${tls ? 'TLS ' : ''}${mib} MiB`;
      return {
        [`${what}: wall s`]: run.seconds,
        [`${what}: server CPU s`]: serverCpu,
        ...(run.cpuSeconds === null ? {} : { [`${what}: client CPU s`]: run.cpuSeconds }),
        [`${what}: server peak RSS MiB`]: serverPeak / 1024,
        ...(run.peakRssKiB === null ? {} : { [`${what}: client peak RSS MiB`]: run.peakRssKiB / 1024 }),
      };
    };
    for (const mib of [64, 256]) {
      note(`one ${mib} MiB job`);
      await alternate(sides, runs, samples, '', (side) => job(side, mib, false));
    }
    note('five 64 MiB jobs at once');
    await alternate(sides, runs, samples, 'five 64 MiB jobs at once: wall s', async (side) => {
      const t0 = performance.now();
      const f = files[64];
      await Promise.all(Array.from({ length: 5 }, (_, i) => runProgram(bin(side, 'enc_client'), [f.text, f.key, String(side.enc!.port)], { what: `enc_client ${i + 1} of 5 (${side.label})` })));
      return (performance.now() - t0) / 1000;
    });
    note('tiny jobs a second at 50 connections');
    await alternate(sides, runs, samples, 'tiny jobs/s at 50 connections', async (side) => (await tinyJobs(side.enc!.port, 'otp', 50, 3)).jobsPerSecond);
    if (ref) {
      const refRuns: number[] = [];
      for (let run = 0; run < runs; run++) refRuns.push((await tinyJobs(ref.port, 'reference', 50, 3)).jobsPerSecond);
      (samples['tiny jobs/s at 50 connections'] ??= {})['C reference'] = refRuns;
    }
    note('37 bytes, --version, node -e 0');
    const plaintext1 = join(root, 'test', 'fixtures', 'plaintext1');
    await alternate(sides, runs, samples, '', async (side) => {
      const small: number[] = [];
      const version: number[] = [];
      const bare: number[] = [];
      for (let i = 0; i < 5; i++) {
        small.push((await runProgram(bin(side, 'enc_client'), [plaintext1, files[8].key, String(side.enc!.port)], { what: `enc_client plaintext1 (${side.label})` })).seconds * 1000);
        version.push((await runProgram(bin(side, 'enc_client'), ['--version'], {})).seconds * 1000);
        bare.push((await runProgram('node', ['-e', '0'], {})).seconds * 1000);
      }
      return { '37 bytes: ms': median(small), '--version: ms': median(version), 'node -e 0: ms': median(bare) };
    });
    note('keygen');
    await alternate(sides, runs, samples, 'keygen 100000000: s', async (side) => (await runProgram(bin(side, 'keygen'), ['100000000'], { what: `keygen (${side.label})` })).seconds);
    note('a 64 MiB job over TLS');
    await alternate(sides, runs, samples, '', (side) => job(side, 64, true));
    for (const f of Object.values(files)) for (const file of Object.values(f)) rmSync(file, { force: true });
  } finally {
    for (const side of sides) await Promise.all([side.enc?.stop(), side.tls?.stop()]);
    await ref?.stop();
    base.remove();
  }
  const medians: AgainstReport['medians'] = {};
  const ratios: AgainstReport['ratios'] = {};
  for (const [measure, bySide] of Object.entries(samples)) {
    medians[measure] = Object.fromEntries(Object.entries(bySide).map(([side, values]) => [side, Number(median(values).toFixed(4))]));
    const mine = bySide['this tree'];
    const theirs = bySide[base.label];
    if (mine && theirs) ratios[measure] = Number(median(mine.map((x, i) => x / theirs[i])).toFixed(3));
  }
  return { base: base.label, runs, medians, ratios };
}

export function renderAgainst(report: AgainstReport): string {
  const rows = [['measure', 'this tree', report.base, 'this / base', 'C reference']];
  for (const [measure, bySide] of Object.entries(report.medians)) {
    const cell = (x: number | undefined): string => (x === undefined ? '' : x >= 100 ? x.toFixed(0) : x.toFixed(3));
    rows.push([measure, cell(bySide['this tree']), cell(bySide[report.base]), report.ratios[measure]?.toFixed(3) ?? '', cell(bySide['C reference'])]);
  }
  const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => row[col].length)));
  const lines = rows.map((row) => row.map((c, col) => (col === 0 ? c.padEnd(widths[col]) : c.padStart(widths[col]))).join('  ').trimEnd());
  return [`this tree against ${report.base}: medians of ${report.runs} alternating runs; the ratio is the median of the runs' ratios`, '', ...lines].join('\n');
}
