// Judges a TLS client's certificate against the server's client CAs, so that a refused client is told why in a frame.
import type { X509Certificate } from 'node:crypto';

/**
 * Why `certificate` is not accepted, or null when one of `cas` issued and signed it and
 * it is within its dates. Only certificates a client CA signs directly are accepted:
 * the deployment this serves has one private CA, no intermediates.
 */
export function clientCertificateProblem(certificate: X509Certificate | undefined, cas: readonly X509Certificate[], now = new Date()): string | null {
  if (!certificate) return 'no client certificate was presented';
  const issuer = cas.find((ca) => certificate.checkIssued(ca) && certificate.verify(ca.publicKey));
  if (!issuer) return "the client certificate is not signed by this server's client CA";
  if (now < new Date(certificate.validFrom)) return 'the client certificate is not valid yet';
  if (now > new Date(certificate.validTo)) return 'the client certificate has expired';
  return null;
}
