import { checkImage, halve, roundNonNegative } from './image.js'
import { toFivePoints } from './landmarks.js'
import {
  ARCFACE_112_TEMPLATE,
  DLIB_CHIP_LANDMARKS_68,
  DLIB_MEAN_FACE_68,
  DLIB_MEAN_FACE_FIRST_INDEX,
} from './templates.js'
import type { Affine, Box, Point, RgbImage } from './types.js'

/**
 * The least-squares similarity (scale, rotation, translation; never a reflection) mapping `src`
 * onto `dst`: Umeyama's method, which in 2-D reduces to a complex linear regression
 * w = sum(conj(s_i) d_i) / sum(|s_i|^2) on centred points. Throws a RangeError for fewer than 2
 * pairs, mismatched lengths, non-finite points or coincident `src` points.
 */
export function estimateSimilarity(src: readonly Point[], dst: readonly Point[]): Affine {
  if (src.length !== dst.length) {
    throw new RangeError(
      `estimateSimilarity: ${src.length} source points but ${dst.length} destination points`,
    )
  }
  if (src.length < 2) throw new RangeError('estimateSimilarity: needs at least 2 point pairs')
  const n = src.length
  let sx = 0
  let sy = 0
  let dx = 0
  let dy = 0
  for (let i = 0; i < n; i++) {
    const s = pointAt(src, i)
    const d = pointAt(dst, i)
    sx += s.x
    sy += s.y
    dx += d.x
    dy += d.y
  }
  sx /= n
  sy /= n
  dx /= n
  dy /= n
  let variance = 0
  let dot = 0
  let cross = 0
  for (let i = 0; i < n; i++) {
    const s = pointAt(src, i)
    const d = pointAt(dst, i)
    const px = s.x - sx
    const py = s.y - sy
    const qx = d.x - dx
    const qy = d.y - dy
    variance += px * px + py * py
    dot += px * qx + py * qy
    cross += px * qy - py * qx
  }
  if (!Number.isFinite(variance) || !Number.isFinite(dot) || !Number.isFinite(cross)) {
    throw new RangeError('estimateSimilarity: points must be finite')
  }
  if (!(variance > 0)) throw new RangeError('estimateSimilarity: source points coincide')
  const a = dot / variance
  const b = cross / variance
  return [a, -b, dx - (a * sx - b * sy), b, a, dy - (b * sx + a * sy)]
}

/** Applies the affine to a point. */
export function applyAffine(affine: Affine, point: Point): Point {
  const [a, b, tx, c, d, ty] = affine
  return { x: a * point.x + b * point.y + tx, y: c * point.x + d * point.y + ty }
}

/** The inverse map. Throws a RangeError when the affine is singular. */
export function invertAffine(affine: Affine): Affine {
  const [a, b, tx, c, d, ty] = affine
  const det = a * d - b * c
  if (!Number.isFinite(det) || Math.abs(det) < 1e-12)
    throw new RangeError('invertAffine: the affine is singular')
  const ia = d / det
  const ib = -b / det
  const ic = -c / det
  const id = a / det
  return [ia, ib, -(ia * tx + ib * ty), ic, id, -(ic * tx + id * ty)]
}

/** `outer ∘ inner`: first `inner`, then `outer`. */
export function composeAffine(outer: Affine, inner: Affine): Affine {
  const [a1, b1, t1, c1, d1, u1] = outer
  const [a2, b2, t2, c2, d2, u2] = inner
  return [
    a1 * a2 + b1 * c2,
    a1 * b2 + b1 * d2,
    a1 * t2 + b1 * u2 + t1,
    c1 * a2 + d1 * c2,
    c1 * b2 + d1 * d2,
    c1 * t2 + d1 * u2 + u1,
  ]
}

/** The axis-aligned box around the four mapped corners of `box`. */
export function mapBox(box: Box, affine: Affine): Box {
  const corners = [
    applyAffine(affine, { x: box.x, y: box.y }),
    applyAffine(affine, { x: box.x + box.width, y: box.y }),
    applyAffine(affine, { x: box.x, y: box.y + box.height }),
    applyAffine(affine, { x: box.x + box.width, y: box.y + box.height }),
  ]
  const xs = corners.map((p) => p.x)
  const ys = corners.map((p) => p.y)
  const x = Math.min(...xs)
  const y = Math.min(...ys)
  return { x, y, width: Math.max(...xs) - x, height: Math.max(...ys) - y }
}

export interface WarpOptions {
  /**
   * What samples outside the input read. `constant` (default) reads `fill`, blended bilinearly at
   * the edge like OpenCV's BORDER_CONSTANT: face chips are cut this way by dlib and insightface,
   * so the embedders saw black outside the photo during training. `replicate` clamps to the edge.
   */
  border?: 'constant' | 'replicate'
  /** Grey level read outside the input in `constant` mode. Default 0. */
  fill?: number
}

/**
 * Warps by inverse mapping: `outputToInput` maps each output pixel centre (x, y) to the input
 * position sampled, bilinearly. Pass `invertAffine(inputToOutput)` to warp with a forward map.
 */
export function warpAffineBilinear(
  image: RgbImage,
  outputToInput: Affine,
  outWidth: number,
  outHeight: number,
  options: WarpOptions = {},
): RgbImage {
  checkImage(image, 'warpAffineBilinear')
  checkOutputSize(outWidth, outHeight, 'warpAffineBilinear')
  const replicate = options.border === 'replicate'
  const fill = Math.min(255, Math.max(0, Math.round(options.fill ?? 0)))
  const [a, b, tx, c, d, ty] = outputToInput
  const { width, height, data: src } = image
  const out = new Uint8Array(outWidth * outHeight * 3)
  const stride = width * 3
  // The per-frame chip cut: one position computation per pixel, the three channels unrolled,
  // and the same products and sums as the general formula so results are bit-identical.
  let o = 0
  for (let y = 0; y < outHeight; y++) {
    const by = b * y
    const dy = d * y
    for (let x = 0; x < outWidth; x++, o += 3) {
      let sx = a * x + by + tx
      let sy = c * x + dy + ty
      if (replicate) {
        sx = Math.min(Math.max(sx, 0), width - 1)
        sy = Math.min(Math.max(sy, 0), height - 1)
      }
      const x0 = Math.floor(sx)
      const y0 = Math.floor(sy)
      const fx = sx - x0
      const fy = sy - y0
      const gx = 1 - fx
      const gy = 1 - fy
      if (x0 >= 0 && y0 >= 0 && x0 + 1 < width && y0 + 1 < height) {
        const p00 = y0 * stride + x0 * 3
        const p10 = p00 + 3
        const p01 = p00 + stride
        const p11 = p01 + 3
        out[o] = roundNonNegative(
          ((src[p00] as number) * gx + (src[p10] as number) * fx) * gy +
            ((src[p01] as number) * gx + (src[p11] as number) * fx) * fy,
        )
        out[o + 1] = roundNonNegative(
          ((src[p00 + 1] as number) * gx + (src[p10 + 1] as number) * fx) * gy +
            ((src[p01 + 1] as number) * gx + (src[p11 + 1] as number) * fx) * fy,
        )
        out[o + 2] = roundNonNegative(
          ((src[p00 + 2] as number) * gx + (src[p10 + 2] as number) * fx) * gy +
            ((src[p01 + 2] as number) * gx + (src[p11 + 2] as number) * fx) * fy,
        )
      } else if (x0 < -1 || y0 < -1 || x0 >= width || y0 >= height || Number.isNaN(sx) || Number.isNaN(sy)) {
        out[o] = fill
        out[o + 1] = fill
        out[o + 2] = fill
      } else {
        // Straddles the border (or sits exactly on the last row/column): read each neighbour.
        for (let ch = 0; ch < 3; ch++) {
          const v00 = readOr(src, width, height, x0, y0, ch, fill)
          const v10 = readOr(src, width, height, x0 + 1, y0, ch, fill)
          const v01 = readOr(src, width, height, x0, y0 + 1, ch, fill)
          const v11 = readOr(src, width, height, x0 + 1, y0 + 1, ch, fill)
          out[o + ch] = Math.round((v00 * gx + v10 * fx) * gy + (v01 * gx + v11 * fx) * fy)
        }
      }
    }
  }
  return { data: out, width: outWidth, height: outHeight }
}

/**
 * Cuts a chip like dlib's `extract_image_chip`: when the chip is more than 2x smaller than its
 * footprint in the input, the footprint is first halved (2x2 box filter; dlib uses a 5-tap
 * pyramid, so pixels differ slightly, framing does not) until bilinear sampling no longer skips
 * input pixels, then sampled bilinearly. `chipToImage` maps chip pixels to input pixels. Only
 * the footprint is filtered, so a face in a 12-megapixel photo costs what the face costs.
 */
export function extractChip(
  image: RgbImage,
  chipToImage: Affine,
  width: number,
  height: number,
  options: WarpOptions = {},
): RgbImage {
  checkImage(image, 'extractChip')
  checkOutputSize(width, height, 'extractChip')
  let scale = Math.sqrt(Math.abs(chipToImage[0] * chipToImage[4] - chipToImage[1] * chipToImage[3]))
  let levels = 0
  while (scale > 2) {
    scale /= 2
    levels++
  }
  if (levels === 0) return warpAffineBilinear(image, chipToImage, width, height, options)

  const corners = [
    { x: -0.5, y: -0.5 },
    { x: width - 0.5, y: -0.5 },
    { x: -0.5, y: height - 0.5 },
    { x: width - 0.5, y: height - 0.5 },
  ].map((p) => applyAffine(chipToImage, p))
  const margin = 2 ** (levels + 1) + 2
  const left = Math.max(0, Math.floor(Math.min(...corners.map((p) => p.x)) - margin))
  const top = Math.max(0, Math.floor(Math.min(...corners.map((p) => p.y)) - margin))
  const right = Math.min(image.width, Math.ceil(Math.max(...corners.map((p) => p.x)) + margin))
  const bottom = Math.min(image.height, Math.ceil(Math.max(...corners.map((p) => p.y)) + margin))
  if (!(left < right && top < bottom)) {
    const fill = Math.min(255, Math.max(0, Math.round(options.fill ?? 0)))
    return { data: new Uint8Array(width * height * 3).fill(fill), width, height }
  }
  let level = crop(image, left, top, right - left, bottom - top)
  let affine = composeAffine([1, 0, -left, 0, 1, -top], chipToImage)
  for (let i = 0; i < levels && level.width > 1 && level.height > 1; i++) {
    level = halve(level)
    // Halved pixel j is centred on 2j + 0.5 of the level below.
    affine = composeAffine([0.5, 0, -0.25, 0, 0.5, -0.25], affine)
  }
  return warpAffineBilinear(level, affine, width, height, options)
}

/** Where a face chip comes from: feed `chipToImage` to `extractChip`. */
export interface FaceChip {
  /** Maps chip pixel centres to image positions. */
  chipToImage: Affine
  /** Maps image positions to chip pixels, e.g. to draw landmarks on the chip. */
  imageToChip: Affine
  /** Side of the square chip, in pixels. */
  size: number
}

export interface FaceChipOptions {
  /** Side of the chip in pixels. Default 150 (dlib's ResNet embedder). */
  size?: number
  /** Border around the template, as a fraction of its side. Default 0.25 (dlib's ResNet embedder). */
  padding?: number
  /**
   * Instead of `padding`: the chip covers this square of the template's own coordinates (the
   * template spans the unit square): side length and centre. `padding: p` is the square of side
   * 1 + 2p centred at (0.5, 0.5).
   */
  square?: { side: number; centerX: number; centerY: number }
}

/**
 * dlib's `get_face_chip_details` + `extract_image_chip` framing for a 5-point or other template
 * on the unit square: the template is padded and scaled to the chip, a least-squares similarity
 * maps it onto the landmarks, and the chip grid is laid out the way dlib does it (chip centre at
 * `size / 2` template units, corner pixels on a rectangle `size * scale - 1` wide), which is half
 * a pixel and `size/(size-1)` in scale away from naively inverting the similarity. Throws a
 * RangeError for degenerate landmarks.
 */
export function chipTransformFromTemplate(
  landmarks: readonly Point[],
  template: readonly Point[],
  options: FaceChipOptions = {},
): FaceChip {
  const size = options.size ?? 150
  const padding = options.padding ?? 0.25
  if (!Number.isSafeInteger(size) || size < 2)
    throw new RangeError(`face chip size must be an integer >= 2, got ${size}`)
  if (!(padding >= 0) || !Number.isFinite(padding))
    throw new RangeError(`face chip padding must be >= 0, got ${padding}`)
  const square = options.square ?? { side: 1 + 2 * padding, centerX: 0.5, centerY: 0.5 }
  if (!(square.side > 0) || !Number.isFinite(square.side + square.centerX + square.centerY))
    throw new RangeError('face chip square must have a finite side > 0 and a finite centre')
  const left = square.centerX - square.side / 2
  const top = square.centerY - square.side / 2
  const chipPoints = template.map((p) => ({
    x: ((p.x - left) / square.side) * size,
    y: ((p.y - top) / square.side) * size,
  }))
  const similarity = estimateSimilarity(chipPoints, landmarks)
  const cosScaled = similarity[0]
  const sinScaled = similarity[3]
  const angle = Math.atan2(sinScaled, cosScaled)
  const scale = Math.hypot(cosScaled, sinScaled)
  const center = applyAffine(similarity, { x: size / 2, y: size / 2 })
  // dlib: rect = centered_drect(center, size*scale, size*scale) spans size*scale - 1 between its
  // corner pixels, and chip pixels 0 and size-1 land on those corners.
  const step = (size * scale - 1) / (size - 1)
  if (!(step > 0)) throw new RangeError('face chip: the landmarks span less than one pixel')
  const cos = Math.cos(angle) * step
  const sin = Math.sin(angle) * step
  const half = (size - 1) / 2
  const chipToImage: Affine = [
    cos,
    -sin,
    center.x - (cos * half - sin * half),
    sin,
    cos,
    center.y - (sin * half + cos * half),
  ]
  return { chipToImage, imageToChip: invertAffine(chipToImage), size }
}

export interface FaceChip68Options extends FaceChipOptions {
  /** iBUG indices (17..67) to fit. Default DLIB_CHIP_LANDMARKS_68, dlib's own 33-point subset. */
  useIndices?: readonly number[]
}

/**
 * dlib's face chip for 68 iBUG landmarks (`get_face_chip_details`), by default fitted on dlib's
 * 33 points (DLIB_CHIP_LANDMARKS_68: no eyebrows, no lower lip), 150 px, padding 0.25: the input
 * dlib's ResNet embedder expects.
 */
export function faceChipTransform(landmarks68: readonly Point[], options: FaceChip68Options = {}): FaceChip {
  if (landmarks68.length !== 68) {
    throw new RangeError(`faceChipTransform: expected 68 landmarks, got ${landmarks68.length}`)
  }
  const indices = options.useIndices ?? DLIB_CHIP_LANDMARKS_68
  const template: Point[] = []
  const points: Point[] = []
  for (const index of indices) {
    const templatePoint = DLIB_MEAN_FACE_68[index - DLIB_MEAN_FACE_FIRST_INDEX]
    const landmark = landmarks68[index]
    if (!Number.isInteger(index) || templatePoint === undefined || landmark === undefined) {
      throw new RangeError(`faceChipTransform: landmark index ${index} has no template point (use 17..67)`)
    }
    template.push(templatePoint)
    points.push(landmark)
  }
  return chipTransformFromTemplate(points, template, options)
}

/**
 * insightface's `norm_crop` framing: the similarity from the five landmarks onto the ArcFace
 * template (scaled for `size`: multiples of 112 scale it, multiples of 128 scale it and shift it
 * 8/128 right), sampled like `cv2.warpAffine`. Default size 112.
 */
export function arcFaceTransform(landmarks: readonly Point[], size = 112): FaceChip {
  if (!Number.isSafeInteger(size) || size <= 0 || (size % 112 !== 0 && size % 128 !== 0)) {
    throw new RangeError(`arcFaceTransform: size must be a multiple of 112 or 128, got ${size}`)
  }
  const ratio = size % 112 === 0 ? size / 112 : size / 128
  const shiftX = size % 112 === 0 ? 0 : 8 * ratio
  const template = ARCFACE_112_TEMPLATE.map((p) => ({ x: p.x * ratio + shiftX, y: p.y * ratio }))
  const imageToChip = estimateSimilarity(toFivePoints(landmarks), template)
  return { chipToImage: invertAffine(imageToChip), imageToChip, size }
}

function crop(image: RgbImage, left: number, top: number, width: number, height: number): RgbImage {
  const out = new Uint8Array(width * height * 3)
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * image.width + left) * 3
    out.set(image.data.subarray(from, from + width * 3), y * width * 3)
  }
  return { data: out, width, height }
}

function readOr(
  src: Uint8Array,
  width: number,
  height: number,
  x: number,
  y: number,
  channel: number,
  fill: number,
): number {
  if (x < 0 || y < 0 || x >= width || y >= height) return fill
  return src[(y * width + x) * 3 + channel] ?? fill
}

function pointAt(points: readonly Point[], index: number): Point {
  const point = points[index]
  if (point === undefined) throw new RangeError(`point ${index} is missing`)
  return point
}

function checkOutputSize(width: number, height: number, caller: string): void {
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`${caller}: output size must be positive integers, got ${width}x${height}`)
  }
}
