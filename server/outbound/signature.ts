/**
 * The webhook signature (docs/integrations.md, "Verifying a delivery"): HMAC-SHA256, keyed with the
 * endpoint's secret, over `<timestamp>.<body>`, sent as `Facewire-Signature: t=<unix s>,v1=<hex>`.
 * The timestamp is signed so a receiver can refuse old deliveries replayed at it.
 */
import { createHmac } from 'node:crypto'

/** The header carrying the signature. */
export const SIGNATURE_HEADER = 'facewire-signature'

/** The hex HMAC-SHA256 of `<timestampS>.<body>` under `secret`. */
export function signWebhook(secret: string, timestampS: number, body: string): string {
  return createHmac('sha256', secret)
    .update(`${String(timestampS)}.${body}`)
    .digest('hex')
}

/** The Facewire-Signature header value for a body sent at `timestampS` (unix seconds). */
export function toSignatureHeader(secret: string, timestampS: number, body: string): string {
  return `t=${String(timestampS)},v1=${signWebhook(secret, timestampS, body)}`
}
