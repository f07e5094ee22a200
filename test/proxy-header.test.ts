// The PROXY protocol header parser: real HAProxy headers, every split point, every corrupted signature byte, limits, garbage.
import t from 'tap';
import fc from 'fast-check';
import { isIPv6 } from 'node:net';
import { PROXY_V1_MAX_LENGTH, PROXY_V2_MAX_LENGTH } from '../src/protocol/proxy.js';
import { formatIPv6, parseProxyHeader, type ProxyHeader } from '../src/server/proxy-header.js';
import { holds } from './helpers/streams.js';

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');
const latin1 = (text: string): Buffer => Buffer.from(text, 'latin1');

/** The v2 signature, spelled out here from the specification rather than taken from src. */
const SIGNATURE = hex('0d0a0d0a 000d0a51 5549540a');

/** A version 2 header: version/command byte, family/transport byte, then the block (its length computed unless given). */
function v2(verCmd: number, fam: number, block: Buffer | Uint8Array = Buffer.alloc(0), length = block.length): Buffer {
  const fixed = Buffer.alloc(4);
  fixed[0] = verCmd;
  fixed[1] = fam;
  fixed.writeUInt16BE(length, 2);
  return Buffer.concat([SIGNATURE, fixed, block]);
}

function inetBlock(src: number[], dst: number[], srcPort: number, dstPort: number, tlvs: Uint8Array = Buffer.alloc(0)): Buffer {
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(srcPort, 0);
  ports.writeUInt16BE(dstPort, 2);
  return Buffer.concat([Buffer.from(src), Buffer.from(dst), ports, tlvs]);
}

/** A verdict without its rest, for comparison. */
function verdict(result: ProxyHeader | undefined): unknown {
  if (!result) return undefined;
  if (result.kind === 'invalid') return result;
  return { ...result, rest: result.rest.toString('hex') };
}

// Captured from HAProxy 2.6 (Debian 12) in front of a listener, a client sending 'HELLO'.
const HAPROXY = {
  v1: latin1('PROXY TCP4 127.0.0.1 127.0.0.1 34400 34727\r\nHELLO'),
  v2: hex('0d0a0d0a000d0a515549540a 21 11 000c 7f000001 7f000001 9548 ad6d 48454c4c4f'),
  healthCheck: hex('0d0a0d0a000d0a515549540a 20 00 0000'),
};

t.test('headers as HAProxy sends them', async (t) => {
  t.same(verdict(parseProxyHeader(HAPROXY.v1)), {
    kind: 'proxy',
    source: { address: '127.0.0.1', port: 34400 },
    rest: latin1('HELLO').toString('hex'),
  });
  t.same(verdict(parseProxyHeader(HAPROXY.v2)), {
    kind: 'proxy',
    source: { address: '127.0.0.1', port: 0x9548 },
    rest: latin1('HELLO').toString('hex'),
  });
  t.same(verdict(parseProxyHeader(HAPROXY.healthCheck)), { kind: 'local', rest: '' }, 'a send-proxy-v2 health check is LOCAL');
});

/** Valid headers, each with the verdict it must get, followed by payload bytes that are the rest. */
const VALID: { name: string; header: Buffer; source: { address: string; port: number } | null; kind?: 'local' }[] = [
  { name: 'v1 TCP4', header: latin1('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n'), source: { address: '192.168.0.1', port: 56324 } },
  { name: 'v1 TCP4 widest', header: latin1('PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n'), source: { address: '255.255.255.255', port: 65535 } },
  { name: 'v1 TCP6', header: latin1('PROXY TCP6 2001:db8::1 ::1 0 7\r\n'), source: { address: '2001:db8::1', port: 0 } },
  { name: 'v1 UNKNOWN short', header: latin1('PROXY UNKNOWN\r\n'), source: null },
  {
    name: 'v1 UNKNOWN worst case, 107 bytes',
    header: latin1(`PROXY UNKNOWN ${'ffff:'.repeat(7)}ffff ${'ffff:'.repeat(7)}ffff 65535 65535\r\n`),
    source: null,
  },
  { name: 'v2 TCP4', header: v2(0x21, 0x11, inetBlock([10, 0, 0, 1], [10, 0, 0, 2], 1234, 80)), source: { address: '10.0.0.1', port: 1234 } },
  {
    name: 'v2 TCP4 with TLVs',
    header: v2(0x21, 0x11, inetBlock([1, 2, 3, 4], [5, 6, 7, 8], 9, 10, hex('04 0003 000000 05 0002 4142'))),
    source: { address: '1.2.3.4', port: 9 },
  },
  {
    name: 'v2 TCP6',
    header: v2(0x21, 0x21, Buffer.concat([hex('20010db8000000000000000000000001'), hex('00000000000000000000000000000001'), hex('ffff 0050')])),
    source: { address: '2001:db8::1', port: 65535 },
  },
  { name: 'v2 UNSPEC', header: v2(0x21, 0x00), source: null },
  { name: 'v2 UNIX', header: v2(0x21, 0x31, Buffer.alloc(216, 0x41)), source: null },
  { name: 'v2 LOCAL with a block to skip', header: v2(0x20, 0x11, inetBlock([1, 1, 1, 1], [2, 2, 2, 2], 3, 4)), source: null, kind: 'local' },
  { name: 'v2 LOCAL, family ignored', header: v2(0x20, 0xff), source: null, kind: 'local' },
  { name: 'v2 at the length limit', header: v2(0x21, 0x11, Buffer.alloc(PROXY_V2_MAX_LENGTH)), source: { address: '0.0.0.0', port: 0 } },
];

t.test('every split point of every valid header', async (t) => {
  const payload = Buffer.concat([hex('01000000020145'), latin1('PROXY TCP4 \r\n')]);
  for (const { name, header, source, kind } of VALID) {
    const bytes = Buffer.concat([header, payload]);
    let wrong = 0;
    for (let n = 0; n <= bytes.length; n++) {
      const result = verdict(parseProxyHeader(bytes.subarray(0, n)));
      const rest = bytes.subarray(header.length, Math.max(header.length, n)).toString('hex');
      const want = n < header.length ? undefined : kind === 'local' ? { kind, rest } : { kind: 'proxy', source, rest };
      if (JSON.stringify(result) !== JSON.stringify(want)) {
        wrong++;
        t.same(result, want, `${name}: after ${n} of ${header.length} bytes`);
      }
    }
    t.equal(wrong, 0, `${name}: undecided until its last byte, then right with the rest, at all ${bytes.length + 1} lengths`);
  }
});

t.test('every single-byte corruption of a signature is refused as soon as it arrives', async (t) => {
  const signatures = [
    { name: 'v2', bytes: Buffer.concat([SIGNATURE, hex('21 11 000c'), inetBlock([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)]), length: 12 },
    { name: 'v1', bytes: latin1('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), length: 6 },
  ];
  for (const { name, bytes, length } of signatures) {
    let accepted = 0;
    for (let at = 0; at < length; at++) {
      for (let value = 0; value < 256; value++) {
        if (value === bytes[at]) continue;
        const bad = Buffer.from(bytes);
        bad[at] = value;
        // A first byte that begins the other version's signature is judged one byte later.
        const otherStart = at === 0 && (value === 0x50 || value === 0x0d);
        const early = parseProxyHeader(bad.subarray(0, at + (otherStart ? 2 : 1)));
        const whole = parseProxyHeader(bad);
        if (early?.kind !== 'invalid' || whole?.kind !== 'invalid') {
          accepted++;
          t.fail(`${name}: byte ${at} = 0x${value.toString(16)} was not refused`, { early: verdict(early), whole: verdict(whole) });
        }
      }
    }
    t.equal(accepted, 0, `${name}: all ${length * 255} corruptions of the signature refused at the corrupt byte`);
  }
});

t.test('version 1 is held to the letter', async (t) => {
  const bad: [string, string][] = [
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n', 'LF alone'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX', 'CR alone'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n', 'leading zero in a port'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n', 'port over 65535'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n', 'negative port'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n', 'a sixth field'],
    ['PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n', 'two spaces'],
    ['PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n', 'octet over 255'],
    ['PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n', 'leading zero in an octet'],
    ['PROXY TCP4 ::1 5.6.7.8 1 2\r\n', 'IPv6 address under TCP4'],
    ['PROXY TCP6 1.2.3.4 ::1 1 2\r\n', 'IPv4 address under TCP6'],
    ['PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n', 'IPv6 zone'],
    ['PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n', 'unknown protocol'],
    ['PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n', 'lower case protocol'],
    ['PROXY TCP4\r\n', 'no addresses'],
    ['PROXY UNKNOWN \x00\r\n', 'a NUL in an UNKNOWN line'],
    ['PROXY \r\n', 'empty protocol'],
  ];
  for (const [line, what] of bad) {
    t.equal(parseProxyHeader(latin1(line))?.kind, 'invalid', what);
  }
  const noEnd = latin1(`PROXY UNKNOWN ${'x'.repeat(200)}`);
  t.equal(parseProxyHeader(noEnd.subarray(0, PROXY_V1_MAX_LENGTH - 1)), undefined, '106 bytes without CRLF: still waiting');
  t.match(parseProxyHeader(noEnd.subarray(0, PROXY_V1_MAX_LENGTH)), { kind: 'invalid', reason: /no CRLF within 107 bytes/ }, '107 bytes without CRLF: refused');
  const line = (length: number): Buffer => latin1(`PROXY UNKNOWN ${'x'.repeat(length - 16)}\r\n`);
  t.equal(line(107).length, 107);
  t.equal(parseProxyHeader(line(107))?.kind, 'proxy', 'CRLF ending at byte 107');
  t.equal(parseProxyHeader(line(108))?.kind, 'invalid', 'CRLF ending at byte 108');
});

t.test('version 2 is held to the letter', async (t) => {
  const block = inetBlock([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
  const cases: [Buffer, RegExp, string][] = [
    [v2(0x11, 0x11, block), /version 1/, 'version 1 in the binary form'],
    [v2(0x31, 0x11, block), /version 3/, 'version 3'],
    [v2(0x22, 0x11, block), /unknown command 2/, 'command 2'],
    [v2(0x2f, 0x11, block), /unknown command 15/, 'command 15'],
    [v2(0x21, 0x41, block), /unknown family/, 'family 4'],
    [v2(0x21, 0x13, block), /unknown family/, 'transport 3'],
    [v2(0x21, 0x11, block.subarray(0, 11)), /too few/, 'an IPv4 block one byte short'],
    [v2(0x21, 0x21, Buffer.alloc(35)), /too few/, 'an IPv6 block one byte short'],
    [v2(0x21, 0x31, Buffer.alloc(215)), /too few/, 'a UNIX block one byte short'],
  ];
  for (const [bytes, reason, what] of cases) t.match(parseProxyHeader(bytes), { kind: 'invalid', reason }, what);

  // The length is judged when the 16 fixed bytes are in: nothing of the lie is waited for.
  const lie = v2(0x21, 0x11, Buffer.alloc(0), PROXY_V2_MAX_LENGTH + 1);
  t.match(parseProxyHeader(lie), { kind: 'invalid', reason: /1025 bytes .* the limit is 1024/ }, 'one byte over the limit, refused at once');
  t.match(parseProxyHeader(v2(0x21, 0x11, Buffer.alloc(0), 0xffff)), { kind: 'invalid' }, 'the largest length the field allows');
  t.equal(parseProxyHeader(v2(0x21, 0x11, Buffer.alloc(100), PROXY_V2_MAX_LENGTH)), undefined, 'within the limit, it waits for the block');
});

t.test('IPv6 addresses in their canonical text', async (t) => {
  const cases: [string, string][] = [
    ['00000000000000000000000000000000', '::'],
    ['00000000000000000000000000000001', '::1'],
    ['20010db8000000000000000000000001', '2001:db8::1'],
    ['20010db8000000010000000000000001', '2001:db8:0:1::1'],
    ['20010db8000000000001000000000001', '2001:db8::1:0:0:1'], // the first of two equal runs
    ['20010db8000100010001000100010001', '2001:db8:1:1:1:1:1:1'],
    ['20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'], // one zero group is not ::
    ['00000000000000000000ffff7f000001', '::ffff:127.0.0.1'],
    ['fe800000000000000000000000000000', 'fe80::'],
  ];
  for (const [bytes, text] of cases) t.equal(formatIPv6(hex(bytes)), text, text);
  await holds(
    t,
    'any 16 bytes give a valid IPv6 text that reads back as the same bytes',
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
      const text = formatIPv6(Buffer.from(bytes));
      return isIPv6(text) && expandIPv6(text).equals(Buffer.from(bytes)) && !/(^|:)0[0-9a-f]/.test(text);
    }),
    { numRuns: 2000 },
  );
});

/** An IPv6 text back to its 16 bytes, written here independently of src. */
function expandIPv6(text: string): Buffer {
  const out = Buffer.alloc(16);
  let tail = text;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    out.set(v4.slice(1).map(Number), 12);
    tail = text.slice(0, v4.index) + '0:0';
  }
  const [head, rest] = tail.includes('::') ? tail.split('::') : [tail, null];
  const left = head ? head.split(':') : [];
  const right = rest ? rest.split(':') : [];
  const groups = [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  groups.forEach((g, i) => (v4 && i >= 6 ? null : out.writeUInt16BE(parseInt(g, 16), i * 2)));
  return out;
}

t.test('garbage', async (t) => {
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 1200 }),
    // Near misses: a real signature followed by anything.
    fc.uint8Array({ maxLength: 1200 }).map((b) => Buffer.concat([SIGNATURE, b])),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.concat([latin1('PROXY '), b])),
    fc.string({ maxLength: 120 }).map((s) => latin1(`PROXY ${s}\r\n`)),
    // Lines made of the bytes that matter to version 1: line ends, spaces, digits, dots.
    fc
      .array(fc.constantFrom('\r', '\n', ' ', '1', '0', '.', ':', 'TCP4', 'UNKNOWN', '\0'), { maxLength: 60 })
      .map((parts) => latin1(`PROXY ${parts.join('')}`)),
  );
  await holds(
    t,
    'no input throws; a verdict, once given, holds for every longer input; the bound always brings one',
    fc.property(bytes, fc.nat(), (raw, cut) => {
      const all = Buffer.from(raw);
      const at = all.length === 0 ? 0 : cut % (all.length + 1);
      const first = parseProxyHeader(all.subarray(0, at));
      const whole = parseProxyHeader(all);
      if (first) {
        const a = verdict(first) as { kind: string; rest?: string };
        const b = verdict(whole) as { kind: string; rest?: string };
        if (a.kind !== b.kind) return false;
        if (a.kind === 'invalid' && JSON.stringify(a) !== JSON.stringify(b)) return false;
      }
      const bound = all[0] === 0x0d ? 16 + PROXY_V2_MAX_LENGTH : PROXY_V1_MAX_LENGTH;
      return all.length < bound || whole !== undefined;
    }),
    { numRuns: 3000 },
  );
});

t.test('any header built from the specification reads back', async (t) => {
  const port = fc.integer({ min: 0, max: 65535 });
  const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));
  await holds(
    t,
    'v1 and v2, IPv4 and IPv6, with any TLVs',
    fc.property(
      ipv4,
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      port,
      port,
      fc.uint8Array({ maxLength: 300 }),
      fc.uint8Array({ maxLength: 50 }),
      (v4, v6, srcPort, dstPort, tlvs, after) => {
        const v4text = v4.join('.');
        const v6text = formatIPv6(Buffer.from(v6));
        const v6block = Buffer.concat([Buffer.from(v6), Buffer.from(v6), Buffer.from([srcPort >> 8, srcPort & 255, dstPort >> 8, dstPort & 255])]);
        const headers: [Buffer, string][] = [
          [latin1(`PROXY TCP4 ${v4text} ${v4text} ${srcPort} ${dstPort}\r\n`), v4text],
          [latin1(`PROXY TCP6 ${v6text} ${v6text} ${srcPort} ${dstPort}\r\n`), v6text],
          [v2(0x21, 0x11, inetBlock(v4, v4, srcPort, dstPort, Buffer.from(tlvs))), v4text],
          [v2(0x21, 0x21, Buffer.concat([v6block, Buffer.from(tlvs)])), v6text],
        ];
        return headers.every(([header, address]) => {
          const result = parseProxyHeader(Buffer.concat([header, Buffer.from(after)]));
          return (
            result?.kind === 'proxy' &&
            result.source?.address === address &&
            result.source.port === srcPort &&
            result.rest.equals(Buffer.from(after))
          );
        });
      },
    ),
    { numRuns: 1000 },
  );
});
