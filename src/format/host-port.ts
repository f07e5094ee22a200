// host:port as people and URLs write it: an IPv6 address goes in brackets, [::1]:5000.
import { isIPv6 } from 'node:net';

export function hostPort(host: string, port: number | string): string {
  return `${isIPv6(host) ? `[${host}]` : host}:${port}`;
}
