// The PROXY protocol header's limits (src/server/proxy-header.ts parses the header).

/** Longest PROXY protocol version 1 line, its CRLF included (the spec's own bound). */
export const PROXY_V1_MAX_LENGTH = 107;
/**
 * Most bytes of addresses and extensions a PROXY protocol version 2 header may announce
 * (the field allows 65535): room for two UNIX addresses (216) and the usual extensions.
 */
export const PROXY_V2_MAX_LENGTH = 1024;
