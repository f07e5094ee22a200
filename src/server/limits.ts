// Per-worker caps (kept below the descriptor limit) and the eviction rule: which connection makes room when a worker is full.
import { readFileSync } from 'node:fs';
import { FD_RESERVE, IDLE_SHED_MS, RATE_WINDOW_MS, REAL_CLIENT_RATE, SHED_GRACE_MS } from '../protocol/capacity.js';

export interface Caps {
  /** Jobs in progress at once. */
  jobs: number;
  /** Connections held at once, jobs included. */
  connections: number;
}

/** The soft limit on open files, from /proc/self/limits; null where there is no such file. */
export function openFileLimit(limits = '/proc/self/limits'): number | null {
  try {
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(limits, 'utf8'));
    return match && match[1] !== 'unlimited' ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/**
 * The caps asked for, with the connections kept FD_RESERVE below the descriptor limit,
 * so that a full worker sheds its idlest connections instead of failing to accept.
 */
export function effectiveCaps(wanted: Caps, fdLimit: number | null): Caps {
  const connections = fdLimit === null ? wanted.connections : Math.max(1, Math.min(wanted.connections, fdLimit - FD_RESERVE));
  return { connections, jobs: Math.min(wanted.jobs, connections) };
}

/** What the eviction rule knows of a connection. */
export interface Standing {
  /** answered: its last frame is sent and it only lingers; handshake: no job yet (in its preamble or its handshake); job: a job in progress. */
  stage: 'answered' | 'handshake' | 'job';
  /** When its current stage began. */
  since: number;
  /** The last time bytes moved either way (sampled by the worker's sweep). */
  lastProgressAt: number;
  /** Jobs only: when the span its rate is taken over began (a RateWindow's start). */
  readonly windowStart: number;
  /** Jobs only: bytes moved either way since windowStart, as they stand when asked (not as the last sweep saw them). */
  readonly windowBytes: number;
}

/**
 * A job's rate as the eviction rule weighs it: bytes a second, either way, over its span,
 * a span shorter than SHED_GRACE_MS counted as that long. So a job just begun is kept
 * once it has moved REAL_CLIENT_RATE × SHED_GRACE_MS bytes, and keeps its slot for as
 * long as what it moves keeps up with REAL_CLIENT_RATE: holding a slot costs that rate
 * whether it is paid in bursts, in drips, or by connecting again and again.
 */
export function shedRate(job: Standing, now: number): number {
  return (job.windowBytes * 1000) / Math.max(now - job.windowStart, SHED_GRACE_MS);
}

/**
 * Where a job's rate is taken from: its start, and once it is older than two
 * RATE_WINDOW_MS, the sample before last of those the worker's sweep takes every
 * RATE_WINDOW_MS. So the span is one to two windows (the job's whole life until then):
 * what the job moves now, never a span so short that one burst could fill it, nor so
 * long that a fast start pays for a slow end.
 */
export class RateWindow {
  /** When the span began. */
  start = 0;
  /** The job's bytes, either way, at `start`. */
  bytesAtStart = 0;
  private sampledAt = 0;
  private bytesAtSample = 0;

  begin(now: number, bytes: number): void {
    this.start = this.sampledAt = now;
    this.bytesAtStart = this.bytesAtSample = bytes;
  }

  /** The sweep's look at the job's bytes. */
  sample(now: number, bytes: number): void {
    if (now - this.sampledAt < RATE_WINDOW_MS) return;
    this.start = this.sampledAt;
    this.bytesAtStart = this.bytesAtSample;
    this.sampledAt = now;
    this.bytesAtSample = bytes;
  }
}

/**
 * The connection to shed to make room, or null when none may be: for a new connection,
 * the longest-answered connection, else the one with no job yet (in its preamble or its
 * handshake) with the oldest progress, else a job as for a new job. For a new job
 * (`forJob`), jobs only: the one idle longest (no traffic for IDLE_SHED_MS), else the one
 * whose shedRate is lowest, if it is below REAL_CLIENT_RATE. No other job is ever shed.
 */
export function pickVictim<T extends Standing>(held: Iterable<T>, now: number, forJob: boolean): T | null {
  let answered: T | null = null;
  let handshake: T | null = null;
  let idle: T | null = null;
  let slow: T | null = null;
  let slowRate = REAL_CLIENT_RATE;
  for (const c of held) {
    if (c.stage === 'answered') {
      if (!answered || c.since < answered.since) answered = c;
    } else if (c.stage === 'handshake') {
      if (!handshake || c.lastProgressAt < handshake.lastProgressAt) handshake = c;
    } else if (now - c.lastProgressAt >= IDLE_SHED_MS) {
      if (!idle || c.lastProgressAt < idle.lastProgressAt) idle = c;
    } else {
      const rate = shedRate(c, now);
      if (rate < slowRate) {
        slow = c;
        slowRate = rate;
      }
    }
  }
  return (forJob ? null : (answered ?? handshake)) ?? idle ?? slow;
}
