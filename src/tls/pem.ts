// The certificates of a PEM bundle, one by one.

/** Every certificate of a PEM bundle. */
export function splitPem(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
