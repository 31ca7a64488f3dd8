/**
 * The MQTT topic layout (docs/integrations.md, "MQTT"): `<prefix>/<org>/<camera>/match`,
 * `<prefix>/<org>/<camera>/unknown` and the retained `<prefix>/<org>/status`.
 */

/** The topic level of events from frames without a camera label. */
export const NO_CAMERA_LEVEL = '_none'

/** The retained payloads of the status topic. */
export const STATUS_ONLINE = 'online'
export const STATUS_OFFLINE = 'offline'

/**
 * A camera label as one topic level: the label itself, with `/` (a level separator), the
 * wildcards `+` and `#`, and control characters (NUL included) each replaced with `_`; a frame
 * without a label gives NO_CAMERA_LEVEL. The payload keeps the label as it was.
 */
export function cameraLevel(camera: string | null): string {
  if (camera === null) return NO_CAMERA_LEVEL
  // eslint-disable-next-line no-control-regex -- control characters are what is replaced
  return camera.replace(/[/+#\u0000-\u001f\u007f]/g, '_')
}

/** The topic of one event. Org ids (`[A-Za-z0-9._-]`) are topic-safe as they are. */
export function eventTopic(
  prefix: string,
  org: string,
  camera: string | null,
  type: 'match' | 'unknown',
): string {
  return `${prefix}/${org}/${cameraLevel(camera)}/${type}`
}

/** The retained availability topic of an organization. */
export function statusTopic(prefix: string, org: string): string {
  return `${prefix}/${org}/status`
}
