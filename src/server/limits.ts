// Per-worker caps (kept below the descriptor limit) and the eviction rule: which connection makes room when a worker is full.
import { readFileSync } from 'node:fs';
import { FD_RESERVE, IDLE_SHED_MS, REAL_CLIENT_RATE, SHED_GRACE_MS } from '../protocol/capacity.js';

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
  /** The last time bytes moved either way. */
  lastProgressAt: number;
  /** Bytes a second, either way, over the last RATE_WINDOW_MS (jobs only). */
  rate: number;
}

/**
 * The connection to shed to make room, or null when none may be: for a new connection,
 * the longest-answered connection, else the one with no job yet (in its preamble or its
 * handshake) with the oldest progress, else a job as for a new job. For a new job
 * (`forJob`), jobs only: the one idle longest (no traffic for IDLE_SHED_MS), else the
 * slowest below REAL_CLIENT_RATE. Jobs younger than SHED_GRACE_MS are never shed.
 */
export function pickVictim<T extends Standing>(held: Iterable<T>, now: number, forJob: boolean): T | null {
  let answered: T | null = null;
  let handshake: T | null = null;
  let idle: T | null = null;
  let slow: T | null = null;
  for (const c of held) {
    if (c.stage === 'answered') {
      if (!answered || c.since < answered.since) answered = c;
    } else if (c.stage === 'handshake') {
      if (!handshake || c.lastProgressAt < handshake.lastProgressAt) handshake = c;
    } else if (now - c.since >= SHED_GRACE_MS) {
      if (now - c.lastProgressAt >= IDLE_SHED_MS) {
        if (!idle || c.lastProgressAt < idle.lastProgressAt) idle = c;
      } else if (c.rate < REAL_CLIENT_RATE && (!slow || c.rate < slow.rate)) {
        slow = c;
      }
    }
  }
  return (forJob ? null : (answered ?? handshake)) ?? idle ?? slow;
}
