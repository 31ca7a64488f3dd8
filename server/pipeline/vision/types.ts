/**
 * Shared shapes of the vision modules. Coordinates everywhere in vision/ follow the dlib/OpenCV
 * convention: the centre of pixel (column i, row j) is the point (i, j), x grows right, y grows
 * down. Boxes are in the same frame: `{x, y}` is the top-left corner.
 */

/** An 8-bit sRGB image, RGB interleaved, rows top to bottom, no padding between rows. */
export interface RgbImage {
  data: Uint8Array
  width: number
  height: number
}

/** An 8-bit single-channel (luma) image. */
export interface GrayImage {
  data: Uint8Array
  width: number
  height: number
}

export interface Point {
  x: number
  y: number
}

/** An axis-aligned box in pixels. */
export interface Box {
  x: number
  y: number
  width: number
  height: number
}

/**
 * A 2x3 affine map `[a, b, tx, c, d, ty]`: x' = a*x + b*y + tx, y' = c*x + d*y + ty. Every
 * function that takes one says which way it maps.
 */
export type Affine = readonly [number, number, number, number, number, number]
