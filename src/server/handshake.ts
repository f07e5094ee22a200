// The opening of a connection, as pure functions: the HELLO parsed from the first bytes, and judged.
import { ErrorCode, FrameType, HEADER_SIZE, MAX_CONTROL_PAYLOAD, PROTOCOL_VERSION, Role } from '../protocol/frames.js';
import { article } from '../format/words.js';

export type Hello =
  | { ok: true; version: number; role: number; /** bytes that came after the HELLO frame */ rest: Buffer }
  | { ok: false; reason: string };

/** The HELLO at the start of `bytes`: undefined while it is incomplete. */
export function parseHello(bytes: Buffer): Hello | undefined {
  if (bytes.length >= 1 && bytes[0] !== FrameType.HELLO) {
    return { ok: false, reason: `the first frame is of type ${bytes[0]}, not HELLO` };
  }
  if (bytes.length < HEADER_SIZE) return undefined;
  const length = bytes.readUInt32BE(1);
  if (length > MAX_CONTROL_PAYLOAD) return { ok: false, reason: `HELLO frame of ${length} bytes` };
  if (bytes.length < HEADER_SIZE + length) return undefined;
  if (length < 2) return { ok: false, reason: `HELLO frame of ${length} bytes` };
  return {
    ok: true,
    version: bytes[HEADER_SIZE],
    role: bytes[HEADER_SIZE + 1],
    rest: bytes.subarray(HEADER_SIZE + length),
  };
}

export interface Refusal {
  code: ErrorCode;
  /** What the client is told. */
  reason: string;
  /** What the server's log says, where it says more than the client is told. */
  logLine?: string;
}

export const ROLE_NAMES: Readonly<Record<number, string>> = { [Role.ENCRYPT]: 'enc_client', [Role.DECRYPT]: 'dec_client' };

/** Whether a server of role `serverRole` serves a client whose HELLO says `version` and `role`. */
export function judgeHello(serverRole: Role, version: number, role: number): Refusal | null {
  if (version !== PROTOCOL_VERSION) {
    return {
      code: ErrorCode.VERSION,
      reason: `protocol version ${version} is not spoken here; this server speaks ${PROTOCOL_VERSION}`,
      logLine: `rejected: protocol version ${version}`,
    };
  }
  if (role !== serverRole) {
    const who = ROLE_NAMES[role] ?? `client of role ${role}`;
    return { code: ErrorCode.ROLE, reason: 'this server does not serve your role', logLine: `rejected: ${article(who)} ${who} is not served here` };
  }
  return null;
}
