/**
 * The client address of a request: the TCP peer, or, when the peer is a trusted reverse proxy
 * (FACEWIRE_TRUSTED_PROXIES), the nearest address in its `X-Forwarded-For` (or `X-Real-IP`) that
 * no trusted proxy stands behind. Anyone can send those headers, so they count only from a listed
 * peer; the address is for logs and rate-limit keys, never for authorization.
 */
import { BlockList, isIP, isIPv4 } from 'node:net'
import type { TrustedProxy } from '../config.js'

/** Resolves a request's client address from its peer address and lower-case headers. */
export type ClientAddressResolver = (peer: string, headers: Readonly<Record<string, string>>) => string

/**
 * `::ffff:a.b.c.d` (any spelling, including uWS's full `0000:…:ffff:7f00:0001`) becomes
 * `a.b.c.d`; other IPv6 addresses become their compressed lower-case form; IPv4 is unchanged.
 * Anything else is returned as it came.
 */
export function toCanonicalAddress(address: string): string {
  const trimmed = address.trim()
  if (isIPv4(trimmed)) return trimmed
  if (isIP(trimmed) !== 6) return trimmed
  // The WHATWG URL parser canonicalises an IPv6 host (compressed, lower case, dotted tail folded).
  const host = new URL(`http://[${trimmed}]/`).hostname.slice(1, -1)
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host)
  if (mapped === null) return host
  const high = Number.parseInt(mapped[1] ?? '0', 16)
  const low = Number.parseInt(mapped[2] ?? '0', 16)
  return [high >> 8, high & 255, low >> 8, low & 255].join('.')
}

function toBlockList(trusted: readonly TrustedProxy[]): BlockList {
  const list = new BlockList()
  for (const { address, family, prefix } of trusted) {
    const type = family === 4 ? 'ipv4' : 'ipv6'
    if (prefix === undefined) list.addAddress(address, type)
    else list.addSubnet(address, prefix, type)
  }
  return list
}

/** The trusted proxies (config.trustedProxies) -> the resolver the transport applies to every request. */
export function createClientAddress(trusted: readonly TrustedProxy[]): ClientAddressResolver {
  if (trusted.length === 0) return (peer) => toCanonicalAddress(peer)
  const list = toBlockList(trusted)
  const isTrusted = (address: string): boolean => list.check(address, isIPv4(address) ? 'ipv4' : 'ipv6')
  return (peer, headers) => {
    let client = toCanonicalAddress(peer)
    if (isIP(client) === 0 || !isTrusted(client)) return client
    const forwarded = headers['x-forwarded-for'] ?? headers['x-real-ip']
    if (forwarded === undefined) return client
    // Right to left: each hop was added by the one after it; stop at the first that no trusted
    // proxy stands behind, or at anything that is not an address (leaving the last good hop).
    const hops = forwarded.split(',')
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = toCanonicalAddress(hops[i] ?? '')
      if (isIP(hop) === 0) break
      client = hop
      if (!isTrusted(hop)) break
    }
    return client
  }
}
