import type { Affine, Box, GrayImage, RgbImage } from './types.js'

// ITU-R BT.601 luma weights, the ones OpenCV and most face-quality literature use.
const LUMA_R = 0.299
const LUMA_G = 0.587
const LUMA_B = 0.114

export interface ResizeOptions {
  /**
   * Default true: while the target is at most half the source on an axis, that axis is first
   * halved with a 2-pixel box filter, so a large photo shrunk for a detector does not alias.
   * Turn off to reproduce a plain bilinear resize (TensorFlow's `resizeBilinear`).
   */
  antialias?: boolean
}

/**
 * Resizes with bilinear interpolation, half-pixel centres (OpenCV `INTER_LINEAR`, TensorFlow
 * `half_pixel_centers`), edges replicated.
 */
export function resizeBilinear(
  image: RgbImage,
  width: number,
  height: number,
  options: ResizeOptions = {},
): RgbImage {
  checkImage(image, 'resizeBilinear')
  checkSize(width, height, 'resizeBilinear')
  let source = image
  if (options.antialias ?? true) {
    while (source.width >= 2 * width || source.height >= 2 * height) {
      source = halve(source, source.width >= 2 * width, source.height >= 2 * height)
    }
  }
  if (source.width === width && source.height === height) return source === image ? copyImage(image) : source
  const out = new Uint8Array(width * height * 3)
  const scaleX = source.width / width
  const scaleY = source.height / height
  const xs = sampleTable(width, scaleX, source.width)
  const ys = sampleTable(height, scaleY, source.height)
  const src = source.data
  const stride = source.width * 3
  for (let y = 0; y < height; y++) {
    const y0 = ys.index0[y] ?? 0
    const y1 = ys.index1[y] ?? 0
    const fy = ys.frac[y] ?? 0
    const row0 = y0 * stride
    const row1 = y1 * stride
    for (let x = 0; x < width; x++) {
      const x0 = (xs.index0[x] ?? 0) * 3
      const x1 = (xs.index1[x] ?? 0) * 3
      const fx = xs.frac[x] ?? 0
      const o = (y * width + x) * 3
      for (let c = 0; c < 3; c++) {
        const top = (src[row0 + x0 + c] ?? 0) * (1 - fx) + (src[row0 + x1 + c] ?? 0) * fx
        const bottom = (src[row1 + x0 + c] ?? 0) * (1 - fx) + (src[row1 + x1 + c] ?? 0) * fx
        out[o + c] = Math.round(top * (1 - fy) + bottom * fy)
      }
    }
  }
  return { data: out, width, height }
}

export interface TensorOptions {
  /** Subtracted from each channel (in RGB order, in 0..255 units) before scaling. Default 0. */
  mean?: readonly [number, number, number]
  /** Multiplies after the mean is subtracted; one number or one per channel (RGB order). Default 1. */
  scale?: number | readonly [number, number, number]
  /** Channel order the model expects. */
  channelOrder: 'rgb' | 'bgr'
}

/**
 * A float tensor of shape [1, height, width, 3]: `(pixel - mean[c]) * scale[c]`. For example
 * `{mean: [127.5, 127.5, 127.5], scale: 1 / 127.5}` maps to [-1, 1], `{scale: 1 / 255}` to [0, 1].
 */
export function toFloatTensorNHWC(image: RgbImage, options: TensorOptions): Float32Array {
  checkImage(image, 'toFloatTensorNHWC')
  if (options.mean === undefined && options.scale === undefined && options.channelOrder === 'rgb') {
    // Raw pixels (models that normalise inside the graph): the native element conversion.
    return new Float32Array(image.data)
  }
  const { mean, scale, order } = tensorParameters(options)
  const pixels = image.width * image.height
  const out = new Float32Array(pixels * 3)
  const src = image.data
  for (let i = 0; i < pixels; i++) {
    for (let c = 0; c < 3; c++) {
      const from = order[c] ?? c
      out[i * 3 + c] = ((src[i * 3 + from] ?? 0) - (mean[from] ?? 0)) * (scale[from] ?? 1)
    }
  }
  return out
}

/** Same values as `toFloatTensorNHWC`, laid out [1, 3, height, width] (ArcFace-style ONNX models). */
export function toFloatTensorNCHW(image: RgbImage, options: TensorOptions): Float32Array {
  checkImage(image, 'toFloatTensorNCHW')
  const { mean, scale, order } = tensorParameters(options)
  const pixels = image.width * image.height
  const out = new Float32Array(pixels * 3)
  const src = image.data
  for (let c = 0; c < 3; c++) {
    const from = order[c] ?? c
    const m = mean[from] ?? 0
    const s = scale[from] ?? 1
    const plane = c * pixels
    for (let i = 0; i < pixels; i++) out[plane + i] = ((src[i * 3 + from] ?? 0) - m) * s
  }
  return out
}

export interface Letterbox {
  /** The `width` x `height` model input: the source scaled to fit, the rest filled. */
  image: RgbImage
  /** Resized source width / source width (and height): the two differ only by rounding. */
  scaleX: number
  scaleY: number
  /** Where the resized source starts inside `image`, in pixels. */
  offsetX: number
  offsetY: number
  /** Maps a point of `image` back onto the source image (pixel centres at integers). */
  toSource: Affine
}

export interface LetterboxOptions extends ResizeOptions {
  /** Grey level of the padding. Default 0. */
  fill?: number
  /** `center` (default) splits the padding between both sides; `top-left` puts it right and below. */
  align?: 'center' | 'top-left'
}

/**
 * Scales the image to fit `size` (a square side or {width, height}) keeping its aspect ratio and
 * pads the rest, as detectors trained on square inputs expect. Map detections back with
 * `mapBox(box, result.toSource)` and `applyAffine(result.toSource, point)` from align.ts.
 */
export function letterbox(
  image: RgbImage,
  size: number | { width: number; height: number },
  options: LetterboxOptions = {},
): Letterbox {
  checkImage(image, 'letterbox')
  const width = typeof size === 'number' ? size : size.width
  const height = typeof size === 'number' ? size : size.height
  checkSize(width, height, 'letterbox')
  const scale = Math.min(width / image.width, height / image.height)
  const innerWidth = Math.min(width, Math.max(1, Math.round(image.width * scale)))
  const innerHeight = Math.min(height, Math.max(1, Math.round(image.height * scale)))
  const center = (options.align ?? 'center') === 'center'
  const offsetX = center ? Math.floor((width - innerWidth) / 2) : 0
  const offsetY = center ? Math.floor((height - innerHeight) / 2) : 0
  const resized = resizeBilinear(
    image,
    innerWidth,
    innerHeight,
    options.antialias === undefined ? {} : { antialias: options.antialias },
  )
  const out = new Uint8Array(width * height * 3).fill(clampByte(options.fill ?? 0))
  for (let y = 0; y < innerHeight; y++) {
    const from = y * innerWidth * 3
    out.set(resized.data.subarray(from, from + innerWidth * 3), ((y + offsetY) * width + offsetX) * 3)
  }
  const scaleX = innerWidth / image.width
  const scaleY = innerHeight / image.height
  // Half-pixel centres: letterbox pixel p sits at source (p - offset + 0.5) / scale - 0.5.
  const toSource: Affine = [
    1 / scaleX,
    0,
    (0.5 - offsetX) / scaleX - 0.5,
    0,
    1 / scaleY,
    (0.5 - offsetY) / scaleY - 0.5,
  ]
  return { image: { data: out, width, height }, scaleX, scaleY, offsetX, offsetY, toSource }
}

/**
 * face-api's face crop for a square-input net, in one sampling pass: the `rect` of the image
 * (clipped to it), padded with black to a centred square, resized bilinearly to `size` x `size`.
 * Samples never read outside the rect, exactly as cropping first would.
 */
export function cropPadSquare(image: RgbImage, rect: Box, size: number): RgbImage {
  checkImage(image, 'cropPadSquare')
  checkSize(size, size, 'cropPadSquare')
  const left = Math.max(0, Math.round(rect.x))
  const top = Math.max(0, Math.round(rect.y))
  const right = Math.min(image.width, Math.round(rect.x + rect.width))
  const bottom = Math.min(image.height, Math.round(rect.y + rect.height))
  const out = new Uint8Array(size * size * 3)
  const width = right - left
  const height = bottom - top
  if (width <= 0 || height <= 0) return { data: out, width: size, height: size }
  const side = Math.max(width, height)
  const scale = side / size
  const padX = (side - width) / 2
  const padY = (side - height) / 2
  const src = image.data
  const stride = image.width * 3
  for (let y = 0; y < size; y++) {
    // Half-pixel centres, like resizeBilinear; positions relative to the rect.
    const sy = (y + 0.5) * scale - 0.5 - padY
    if (sy < -0.5 || sy > height - 0.5) continue
    const cy = Math.min(Math.max(sy, 0), height - 1)
    const y0 = Math.floor(cy)
    const y1 = Math.min(y0 + 1, height - 1)
    const fy = cy - y0
    const row0 = (top + y0) * stride
    const row1 = (top + y1) * stride
    for (let x = 0; x < size; x++) {
      const sx = (x + 0.5) * scale - 0.5 - padX
      if (sx < -0.5 || sx > width - 0.5) continue
      const cx = Math.min(Math.max(sx, 0), width - 1)
      const x0 = Math.floor(cx)
      const x1 = Math.min(x0 + 1, width - 1)
      const fx = cx - x0
      const a = row0 + (left + x0) * 3
      const b = row0 + (left + x1) * 3
      const c = row1 + (left + x0) * 3
      const d = row1 + (left + x1) * 3
      const o = (y * size + x) * 3
      for (let k = 0; k < 3; k++) {
        const topValue = (src[a + k] as number) * (1 - fx) + (src[b + k] as number) * fx
        const bottomValue = (src[c + k] as number) * (1 - fx) + (src[d + k] as number) * fx
        out[o + k] = Math.round(topValue * (1 - fy) + bottomValue * fy)
      }
    }
  }
  return { data: out, width: size, height: size }
}

/**
 * A detector's input tensor in one pass: the image scaled to fit `size` x `size` (bilinear, half
 * pixel centres) and zero-padded at the right and bottom, as float32 raw RGB [size, size, 3].
 * Equivalent to `toFloatTensorNHWC(letterbox(image, size, {align: 'top-left', antialias: false}))`
 * without the intermediate 8-bit image; the per-frame hot path, so written with flat loops.
 * Shrinking by more than 2x should go through `resizeBilinear` (antialiased) first.
 */
export function letterboxTensor(image: RgbImage, size: number): Float32Array {
  checkImage(image, 'letterboxTensor')
  checkSize(size, size, 'letterboxTensor')
  const scale = size / Math.max(image.width, image.height)
  const innerWidth = Math.min(size, Math.max(1, Math.round(image.width * scale)))
  const innerHeight = Math.min(size, Math.max(1, Math.round(image.height * scale)))
  const xs = sampleTable(innerWidth, image.width / innerWidth, image.width)
  const ys = sampleTable(innerHeight, image.height / innerHeight, image.height)
  const out = new Float32Array(size * size * 3)
  const src = image.data
  const stride = image.width * 3
  const x0s = new Int32Array(innerWidth)
  const x1s = new Int32Array(innerWidth)
  const fxs = new Float32Array(innerWidth)
  for (let x = 0; x < innerWidth; x++) {
    x0s[x] = (xs.index0[x] ?? 0) * 3
    x1s[x] = (xs.index1[x] ?? 0) * 3
    fxs[x] = xs.frac[x] ?? 0
  }
  for (let y = 0; y < innerHeight; y++) {
    const row0 = (ys.index0[y] ?? 0) * stride
    const row1 = (ys.index1[y] ?? 0) * stride
    const fy = ys.frac[y] ?? 0
    const gy = 1 - fy
    let o = y * size * 3
    for (let x = 0; x < innerWidth; x++) {
      const a = row0 + (x0s[x] as number)
      const b = row0 + (x1s[x] as number)
      const c = row1 + (x0s[x] as number)
      const d = row1 + (x1s[x] as number)
      const fx = fxs[x] as number
      const gx = 1 - fx
      for (let k = 0; k < 3; k++) {
        const top = (src[a + k] as number) * gx + (src[b + k] as number) * fx
        const bottom = (src[c + k] as number) * gx + (src[d + k] as number) * fx
        out[o++] = top * gy + bottom * fy
      }
    }
  }
  return out
}

/** Luma (BT.601) of each pixel, rounded to 8 bits. */
export function toGray(image: RgbImage): GrayImage {
  checkImage(image, 'toGray')
  const pixels = image.width * image.height
  const out = new Uint8Array(pixels)
  const src = image.data
  for (let i = 0; i < pixels; i++) {
    out[i] = Math.round(
      LUMA_R * (src[i * 3] ?? 0) + LUMA_G * (src[i * 3 + 1] ?? 0) + LUMA_B * (src[i * 3 + 2] ?? 0),
    )
  }
  return { data: out, width: image.width, height: image.height }
}

/**
 * Halves the image on the chosen axes with a box filter (an odd last column or row is averaged
 * with itself). Output pixel i is centred on source coordinate 2i + 0.5.
 */
export function halve(image: RgbImage, alongX = true, alongY = true): RgbImage {
  const width = alongX ? (image.width + 1) >> 1 : image.width
  const height = alongY ? (image.height + 1) >> 1 : image.height
  const fx = alongX ? 2 : 1
  const fy = alongY ? 2 : 1
  const out = new Uint8Array(width * height * 3)
  const src = image.data
  const stride = image.width * 3
  for (let y = 0; y < height; y++) {
    const r0 = Math.min(y * fy, image.height - 1) * stride
    const r1 = Math.min(y * fy + fy - 1, image.height - 1) * stride
    for (let x = 0; x < width; x++) {
      const c0 = Math.min(x * fx, image.width - 1) * 3
      const c1 = Math.min(x * fx + fx - 1, image.width - 1) * 3
      const o = (y * width + x) * 3
      for (let c = 0; c < 3; c++) {
        const sum =
          (src[r0 + c0 + c] ?? 0) +
          (src[r0 + c1 + c] ?? 0) +
          (src[r1 + c0 + c] ?? 0) +
          (src[r1 + c1 + c] ?? 0)
        out[o + c] = (sum + 2) >> 2
      }
    }
  }
  return { data: out, width, height }
}

/** Throws a RangeError naming the caller when the buffer does not match the dimensions. */
export function checkImage(image: RgbImage, caller: string): void {
  const { width, height, data } = image
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`${caller}: image dimensions must be positive integers, got ${width}x${height}`)
  }
  if (data.length !== width * height * 3) {
    throw new RangeError(`${caller}: image data has ${data.length} bytes, expected ${width * height * 3}`)
  }
}

function checkSize(width: number, height: number, caller: string): void {
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`${caller}: target size must be positive integers, got ${width}x${height}`)
  }
}

function copyImage(image: RgbImage): RgbImage {
  return { data: new Uint8Array(image.data), width: image.width, height: image.height }
}

function sampleTable(length: number, scale: number, sourceLength: number) {
  const index0 = new Int32Array(length)
  const index1 = new Int32Array(length)
  const frac = new Float32Array(length)
  for (let i = 0; i < length; i++) {
    const position = Math.min(Math.max((i + 0.5) * scale - 0.5, 0), sourceLength - 1)
    const base = Math.floor(position)
    index0[i] = base
    index1[i] = Math.min(base + 1, sourceLength - 1)
    frac[i] = position - base
  }
  return { index0, index1, frac }
}

function tensorParameters(options: TensorOptions) {
  const mean = options.mean ?? [0, 0, 0]
  const scale =
    typeof options.scale === 'number'
      ? [options.scale, options.scale, options.scale]
      : (options.scale ?? [1, 1, 1])
  const order = options.channelOrder === 'rgb' ? [0, 1, 2] : [2, 1, 0]
  return { mean, scale, order }
}

function clampByte(value: number): number {
  return Math.min(255, Math.max(0, Math.round(value)))
}
