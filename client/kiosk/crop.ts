/**
 * The context crop sent for a face: a square of `CONTEXT_SCALE` x the face box's longer side
 * around its centre (the server detects the face again in it, and the liveness net looks at
 * 2.7x the box, so the crop carries some background), kept inside the frame, scaled down so its
 * side is at most `MAX_CROP_SIDE_PX`. The same framing as bench/pipeline.ts's kiosk crops. Pure.
 */
import type { Box } from './geometry.js'

export const CONTEXT_SCALE = 2
export const MAX_CROP_SIDE_PX = 320
export const JPEG_QUALITY = 0.8

export interface CropPlan {
  /** The square taken from the frame, in frame pixels (integers, inside the frame). */
  source: Box
  /** Output side in pixels (the crop is square). */
  side: number
}

/** Where to cut the crop for `face` in a `frameWidth` x `frameHeight` frame. */
export function planCrop(face: Box, frameWidth: number, frameHeight: number): CropPlan {
  const wanted = CONTEXT_SCALE * Math.max(face.width, face.height)
  const side = Math.max(1, Math.floor(Math.min(wanted, frameWidth, frameHeight)))
  const centreX = face.x + face.width / 2
  const centreY = face.y + face.height / 2
  const x = Math.round(Math.min(Math.max(centreX - side / 2, 0), frameWidth - side))
  const y = Math.round(Math.min(Math.max(centreY - side / 2, 0), frameHeight - side))
  return { source: { x, y, width: side, height: side }, side: Math.min(side, MAX_CROP_SIDE_PX) }
}
