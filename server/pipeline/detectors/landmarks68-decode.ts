/**
 * Pure post-processing helpers reproducing face-api's landmark mapping and face alignment box,
 * so a pipeline using the ONNX models can crop faces exactly like face-api does:
 *   detect (TinyFaceDetector) -> crop detection box -> landmarks (68) -> dlib alignment box ->
 *   crop -> FaceRecognitionNet descriptor.
 */

export interface Point {
  x: number
  y: number
}

export interface Rect {
  x: number
  y: number
  width: number
  height: number
}

/**
 * Maps the raw 136-value output of the landmark net (x0, y0, x1, y1, ... relative to the
 * `inputSize` square that the crop was centre-padded and resized into) to pixel positions in the
 * original image, given the crop rectangle that was fed to the net (face-api
 * `FaceLandmark68NetBase.postProcess` followed by `FaceLandmarks` shift).
 */
export function landmarksToImage(raw: ArrayLike<number>, crop: Rect, inputSize = 112): Point[] {
  if (raw.length !== 136) throw new Error(`landmarks: expected 136 values, got ${raw.length}`)
  const scale = inputSize / Math.max(crop.width, crop.height)
  const w = crop.width * scale
  const h = crop.height * scale
  const padX = w < h ? Math.abs(w - h) / 2 : 0
  const padY = h < w ? Math.abs(w - h) / 2 : 0
  const points: Point[] = []
  for (let i = 0; i < 68; i++) {
    const rx = ((raw[2 * i] as number) * inputSize - padX) / w
    const ry = ((raw[2 * i + 1] as number) * inputSize - padY) / h
    points.push({ x: rx * crop.width + crop.x, y: ry * crop.height + crop.y })
  }
  return points
}

const center = (pts: readonly Point[]): Point => {
  const s = pts.reduce((a, p) => ({ x: a.x + p.x, y: a.y + p.y }), { x: 0, y: 0 })
  return { x: s.x / pts.length, y: s.y / pts.length }
}

/**
 * face-api's `landmarks.align(null, { useDlibAlignment: true })`, the box face-api crops for
 * `withFaceDescriptor(s)`: a square of side floor(mean eye-to-mouth distance / 0.45) placed so the
 * centre of (left eye, right eye, mouth) sits at (0.5, 0.43) of it; clamped at the top/left border
 * only (face-api later clips the box at the image borders when extracting the crop).
 * `cropWidth`/`cropHeight` are the dimensions face-api keeps on the landmarks object, i.e. the size
 * of the detection crop fed to the landmark net (face-api bounds width by cropWidth + x, a quirk kept
 * here for parity).
 */
export function dlibAlignmentBox(landmarks: readonly Point[], cropWidth: number, cropHeight: number): Rect {
  if (landmarks.length !== 68) throw new Error(`alignment: expected 68 landmarks, got ${landmarks.length}`)
  const leftEye = center(landmarks.slice(36, 42))
  const rightEye = center(landmarks.slice(42, 48))
  const mouth = center(landmarks.slice(48, 68))
  const dist = (p: Point): number => Math.hypot(mouth.x - p.x, mouth.y - p.y)
  const size = Math.floor((dist(leftEye) + dist(rightEye)) / 2 / 0.45)
  const ref = center([leftEye, rightEye, mouth])
  const x = Math.floor(Math.max(0, ref.x - 0.5 * size))
  const y = Math.floor(Math.max(0, ref.y - 0.43 * size))
  return { x, y, width: Math.min(size, cropWidth + x), height: Math.min(size, cropHeight + y) }
}
