// Parses the PROXY protocol header (version 1 text or version 2 binary) a load balancer puts before a connection's bytes.
import { isIPv4, isIPv6 } from 'node:net';
import { PROXY_V1_MAX_LENGTH, PROXY_V2_MAX_LENGTH } from '../protocol/proxy.js';

export interface Address {
  address: string;
  port: number;
}

export type ProxyHeader =
  /** A relayed connection; `source` is null where the balancer could not name the client (UNKNOWN, UNSPEC, UNIX). */
  | { kind: 'proxy'; source: Address | null; rest: Buffer }
  /** Version 2 LOCAL: the balancer's own connection, its health check. */
  | { kind: 'local'; rest: Buffer }
  | { kind: 'invalid'; reason: string };

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** Signature, version and command, family and transport, length. */
const V2_FIXED = 16;

const NOT_A_HEADER = 'the connection did not begin with a PROXY protocol header';

/**
 * The header at the start of `bytes`, or undefined while more bytes are needed. A
 * verdict comes as soon as the bytes allow one, so a caller that keeps gathering until
 * it has an answer never holds more than the largest header allowed plus one read.
 */
export function parseProxyHeader(bytes: Buffer): ProxyHeader | undefined {
  if (bytes.length === 0) return undefined;
  if (bytes[0] === V1_PREFIX[0]) return parseV1(bytes);
  if (bytes[0] === V2_SIGNATURE[0]) return parseV2(bytes);
  return { kind: 'invalid', reason: NOT_A_HEADER };
}

/** Whether `bytes` begin `prefix`, or are a beginning of it. */
function startsLike(bytes: Buffer, prefix: Buffer): boolean {
  const n = Math.min(bytes.length, prefix.length);
  return bytes.subarray(0, n).equals(prefix.subarray(0, n));
}

// Version 1: 'PROXY TCP4 SRC DST SPORT DPORT\r\n', or 'PROXY UNKNOWN ...\r\n'; at most 107 bytes.

function parseV1(bytes: Buffer): ProxyHeader | undefined {
  if (!startsLike(bytes, V1_PREFIX)) return { kind: 'invalid', reason: NOT_A_HEADER };
  // The line ends at its first CR, which must be followed by LF; a bare CR or LF is refused.
  const window = bytes.subarray(0, PROXY_V1_MAX_LENGTH);
  const cr = window.indexOf(0x0d);
  const lf = window.indexOf(0x0a);
  if (lf >= 0 && (cr < 0 || lf < cr)) return invalidV1('a line ended by LF alone');
  if (cr < 0 || cr === window.length - 1) {
    if (bytes.length >= PROXY_V1_MAX_LENGTH) return invalidV1(`no CRLF within ${PROXY_V1_MAX_LENGTH} bytes`);
    return undefined;
  }
  if (window[cr + 1] !== 0x0a) return invalidV1('a CR without its LF');
  const line = bytes.toString('latin1', V1_PREFIX.length, cr);
  const rest = bytes.subarray(cr + 2);
  const fields = line.split(' ');
  if (fields[0] === 'UNKNOWN') {
    // The sender may put anything before the CRLF, which the receiver ignores; but only text.
    return /^[\x20-\x7e]*$/.test(line) ? { kind: 'proxy', source: null, rest } : invalidV1('a control byte in the line');
  }
  if (fields[0] !== 'TCP4' && fields[0] !== 'TCP6') return invalidV1(`unknown protocol '${printable(fields[0])}'`);
  if (fields.length !== 5) return invalidV1('not five fields after PROXY');
  const [family, source, destination, sourcePort, destinationPort] = fields;
  const isAddress = family === 'TCP4' ? isIPv4 : isIPv6Plain;
  if (!isAddress(source) || !isAddress(destination)) return invalidV1(`an address that is not ${family === 'TCP4' ? 'IPv4' : 'IPv6'}`);
  const port = parsePortField(sourcePort);
  if (port < 0 || parsePortField(destinationPort) < 0) return invalidV1('a port that is not a number from 0 to 65535');
  return { kind: 'proxy', source: { address: source, port }, rest };
}

function invalidV1(why: string): ProxyHeader {
  return { kind: 'invalid', reason: `bad PROXY protocol version 1 header: ${why}` };
}

/** A TCP6 address as the spec writes it: hex digits and colons (and a dotted tail), no zone. */
function isIPv6Plain(text: string): boolean {
  return /^[0-9A-Fa-f:.]+$/.test(text) && isIPv6(text);
}

/** 0..65535 in decimal without leading zeros (the spec forbids them); -1 otherwise. */
function parsePortField(text: string): number {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return -1;
  const port = Number(text);
  return port <= 65535 ? port : -1;
}

function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 16);
}

// Version 2: the 12-byte signature, version/command, family/transport, a u16 length, then that many bytes.

const Command = { LOCAL: 0x0, PROXY: 0x1 } as const;
const Family = { UNSPEC: 0x0, INET: 0x1, INET6: 0x2, UNIX: 0x3 } as const;
const Transport = { UNSPEC: 0x0, STREAM: 0x1, DGRAM: 0x2 } as const;
/** Bytes of the address block of each family: two addresses, then two ports for INET and INET6. */
const ADDRESS_LENGTH: Record<number, number> = { [Family.UNSPEC]: 0, [Family.INET]: 12, [Family.INET6]: 36, [Family.UNIX]: 216 };

function parseV2(bytes: Buffer): ProxyHeader | undefined {
  if (!startsLike(bytes, V2_SIGNATURE)) return { kind: 'invalid', reason: NOT_A_HEADER };
  if (bytes.length > 12) {
    const version = bytes[12] >> 4;
    const command = bytes[12] & 0x0f;
    if (version !== 2) return invalidV2(`version ${version}`);
    if (command !== Command.LOCAL && command !== Command.PROXY) return invalidV2(`unknown command ${command}`);
  }
  // A LOCAL header's family is ignored, like the rest of its block.
  if (bytes.length > 13 && (bytes[12] & 0x0f) === Command.PROXY) {
    const family = bytes[13] >> 4;
    const transport = bytes[13] & 0x0f;
    if (family > Family.UNIX || transport > Transport.DGRAM) return invalidV2(`unknown family and transport 0x${bytes[13].toString(16).padStart(2, '0')}`);
  }
  if (bytes.length < V2_FIXED) return undefined;
  // Checked before waiting for the block: a lying length costs nothing beyond the limit.
  const length = bytes.readUInt16BE(14);
  if (length > PROXY_V2_MAX_LENGTH) return invalidV2(`${length} bytes of addresses and extensions; the limit is ${PROXY_V2_MAX_LENGTH}`);
  if (bytes.length < V2_FIXED + length) return undefined;
  const block = bytes.subarray(V2_FIXED, V2_FIXED + length);
  const rest = bytes.subarray(V2_FIXED + length);
  // LOCAL: the receiver uses the real endpoints and ignores the block, whatever it holds.
  if ((bytes[12] & 0x0f) === Command.LOCAL) return { kind: 'local', rest };
  const family = bytes[13] >> 4;
  const transport = bytes[13] & 0x0f;
  if (length < ADDRESS_LENGTH[family]) return invalidV2(`${length} bytes are too few for the addresses`);
  // Type-length-value extensions may follow the addresses; nothing here needs them.
  if (transport === Transport.UNSPEC || (family !== Family.INET && family !== Family.INET6)) {
    return { kind: 'proxy', source: null, rest };
  }
  const source =
    family === Family.INET
      ? { address: formatIPv4(block.subarray(0, 4)), port: block.readUInt16BE(8) }
      : { address: formatIPv6(block.subarray(0, 16)), port: block.readUInt16BE(32) };
  return { kind: 'proxy', source, rest };
}

function invalidV2(why: string): ProxyHeader {
  return { kind: 'invalid', reason: `bad PROXY protocol version 2 header: ${why}` };
}

function formatIPv4(bytes: Buffer): string {
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

/** RFC 5952's text: lower case, no leading zeros, the longest run of two or more zero groups as '::'. */
export function formatIPv6(bytes: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${formatIPv4(bytes.subarray(12, 16))}`;
  }
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = (list: number[]): string => list.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}
