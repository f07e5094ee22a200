// node:tls and node:crypto, loaded on first use: a client that speaks plain TCP and keeps no ledger never pays their start-up (about 6 ms each of a 37-byte job).
import type * as Crypto from 'node:crypto';
import type * as Tls from 'node:tls';

let tls: typeof Tls | undefined;
let crypto: typeof Crypto | undefined;

export function tlsModule(): typeof Tls {
  return (tls ??= require('node:tls') as typeof Tls);
}

export function cryptoModule(): typeof Crypto {
  return (crypto ??= require('node:crypto') as typeof Crypto);
}
