/**
 * Face detection in the browser: onnxruntime-web's single-threaded WebAssembly backend running the
 * project's TinyFaceDetector conversion. One session, one reused canvas and tensor buffer; the
 * math (letterbox, decode, NMS) is in detector-decode.ts.
 */
import * as ort from 'onnxruntime-web/wasm'
import { decodeGrid, letterbox, regionLuma, toInputTensor, type Letterbox } from './detector-decode.js'
import type { Box } from './geometry.js'
import type { Detection } from './tracker.js'

/** Where onnxruntime-web's runtime files are served (dist/kiosk/ort/, see scripts/build-kiosk.mjs). */
export const ORT_PATH = '/kiosk/ort/'

export interface DetectorModel {
  url: string
  /** The square input side of this model (224 or 416). */
  inputSize: number
}

export interface DetectedFrame {
  detections: Detection[]
  /** Preprocessing, inference and decoding, ms. */
  ms: number
  /** Mean luma (0..1) of a box of this frame, from the detector's input pixels. */
  luma: (box: Box) => number
}

export interface FaceDetector {
  detect: (source: HTMLVideoElement) => Promise<DetectedFrame>
}

export async function createDetector(model: DetectorModel): Promise<FaceDetector> {
  ort.env.wasm.numThreads = 1
  ort.env.wasm.wasmPaths = ORT_PATH
  const session = await ort.InferenceSession.create(model.url, {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
  })
  const inputName = session.inputNames[0] ?? 'input'
  const outputName = session.outputNames[0] ?? 'grid'
  const size = model.inputSize
  const canvas = document.createElement('canvas')
  canvas.width = size
  canvas.height = size
  const context = canvas.getContext('2d', { willReadFrequently: true, alpha: false })
  if (context === null) throw new Error('no 2D canvas context for the detector')
  const tensorData = new Float32Array(size * size * 3)

  return {
    async detect(video) {
      const started = performance.now()
      const box: Letterbox = letterbox(video.videoWidth, video.videoHeight, size)
      context.fillStyle = '#000'
      context.fillRect(0, 0, size, size)
      context.drawImage(video, 0, 0, box.width, box.height)
      const pixels = context.getImageData(0, 0, size, size).data
      toInputTensor(pixels, tensorData)
      const feeds = { [inputName]: new ort.Tensor('float32', tensorData, [1, size, size, 3]) }
      const output = await session.run(feeds)
      const grid = output[outputName]
      if (grid === undefined) throw new Error(`the detector has no output ${outputName}`)
      const detections = decodeGrid(grid.data as Float32Array, box)
      grid.dispose()
      return {
        detections,
        ms: performance.now() - started,
        luma: (region) => regionLuma(pixels, box, region),
      }
    },
  }
}
