import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseConfig } from '../../../server/config.js'
import { createClientAddress, toCanonicalAddress } from '../../../server/transport/client-address.js'

const trusting = (list: string) =>
  createClientAddress(parseConfig({ FACEWIRE_TRUSTED_PROXIES: list }).trustedProxies)

test('uWS spellings of IPv6 and IPv4-mapped peers become canonical addresses', () => {
  assert.equal(toCanonicalAddress('0000:0000:0000:0000:0000:ffff:7f00:0001'), '127.0.0.1')
  assert.equal(toCanonicalAddress('::ffff:10.1.2.3'), '10.1.2.3')
  assert.equal(toCanonicalAddress('0000:0000:0000:0000:0000:0000:0000:0001'), '::1')
  assert.equal(toCanonicalAddress('FD00:0:0:0:0:0:0:0A'), 'fd00::a')
  assert.equal(toCanonicalAddress(' 192.0.2.1 '), '192.0.2.1')
  assert.equal(toCanonicalAddress('unknown'), 'unknown')
})

test('without trusted proxies the forwarding headers are ignored', () => {
  const resolve = createClientAddress([])
  assert.equal(
    resolve('192.0.2.10', { 'x-forwarded-for': '203.0.113.7', 'x-real-ip': '203.0.113.8' }),
    '192.0.2.10',
  )
})

test('a peer that is not listed cannot choose its address with X-Forwarded-For', () => {
  const resolve = trusting('10.0.0.0/8')
  assert.equal(resolve('192.0.2.10', { 'x-forwarded-for': '203.0.113.7' }), '192.0.2.10')
})

test('behind a trusted proxy the client is the nearest hop no trusted proxy stands behind', () => {
  const resolve = trusting('10.0.0.0/8,0000:0000:0000:0000:0000:0000:0000:0001')
  assert.equal(resolve('10.0.0.2', { 'x-forwarded-for': '203.0.113.7' }), '203.0.113.7')
  // A client-sent (spoofed) first hop is left of the address the proxy saw.
  assert.equal(resolve('10.0.0.2', { 'x-forwarded-for': '198.51.100.1, 203.0.113.7' }), '203.0.113.7')
  // Two trusted proxies in a row.
  assert.equal(resolve('10.0.0.2', { 'x-forwarded-for': '203.0.113.7, 10.9.9.9' }), '203.0.113.7')
  // IPv4-mapped peers and hops, as uWS reports them on a dual-stack socket.
  assert.equal(
    resolve('0000:0000:0000:0000:0000:ffff:0a00:0002', { 'x-forwarded-for': '::ffff:203.0.113.7' }),
    '203.0.113.7',
  )
  assert.equal(resolve('::1', { 'x-real-ip': '2001:db8::7' }), '2001:db8::7')
  // No header: the proxy itself.
  assert.equal(resolve('10.0.0.2', {}), '10.0.0.2')
})

test('a hop that is not an address ends the walk at the last trusted one', () => {
  const resolve = trusting('10.0.0.0/8')
  assert.equal(resolve('10.0.0.2', { 'x-forwarded-for': 'unknown, 10.0.0.3' }), '10.0.0.3')
  assert.equal(resolve('10.0.0.2', { 'x-forwarded-for': '203.0.113.7:5555' }), '10.0.0.2')
  assert.equal(resolve('10.0.0.2', { 'x-forwarded-for': '' }), '10.0.0.2')
})
