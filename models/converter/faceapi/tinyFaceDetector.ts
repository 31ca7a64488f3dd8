/**
 * face-api `TinyFaceDetector` (tiny_face_detector_model): a Tiny-YOLOv2-style single-class face
 * detector built from depthwise-separable convolutions.
 *
 * Mirrors face-api src/tinyYolov2/TinyYolov2Base.ts (`runMobilenet`, `withSeparableConvs: true`,
 * `isFirstLayerConv2d: true`, filterSizes [3, 16, 32, 64, 128, 256, 512] -> no conv6/conv7):
 *   x = (rgb - [117.001, 114.697, 97.404]) / 255
 *   conv0: 3x3 conv VALID + bias, leaky(0.1)            (416 -> 414)
 *   maxPool 2x2/2 SAME; conv1 sep; maxPool 2x2/2 SAME; conv2 sep; maxPool; conv3 sep; maxPool;
 *   conv4 sep; maxPool 2x2/2 SAME; conv5 sep; maxPool 2x2 stride 1 SAME; conv8 1x1 VALID + bias
 *   sep(x) = leaky(pointwise(depthwise3x3(pad1(x))) + bias), leaky(x) = max(x, 0.1 x)
 * face-api writes leaky as relu(x - 0.1x) + 0.1x; we emit LeakyRelu(alpha = 0.1), which differs
 * by float rounding only.
 * Output "grid" [N, S/32, S/32, 25] (S = input size, a multiple of 32): for each cell, 5 anchors x
 * [tx, ty, tw, th, objectness] logits. Decode with decodeTinyFaceDetectorGrid (server/pipeline/detectors/tiny-face-decode.ts).
 */
import type { TfjsGraph } from '../types.js'
import { GraphBuilder } from './graph.js'
import type { WeightTensor } from './weights.js'

export const TINY_FACE_DETECTOR_DEFAULT_INPUT_SIZE = 416
export const TINY_FACE_DETECTOR_MEAN_RGB = [117.001, 114.697, 97.404] as const
export const TINY_FACE_DETECTOR_INPUT = 'input'
export const TINY_FACE_DETECTOR_OUTPUT = 'grid'
const LEAKY_ALPHA = 0.10000000149011612 // the float32 constant face-api multiplies by

export interface TinyFaceDetectorGraphOptions {
  /**
   * Square input size, a multiple of 32 (face-api default 416; 160..608 are common).
   * `null` makes height and width dynamic (any multiple of 32 at run time).
   */
  inputSize?: number | null
}

export function buildTinyFaceDetectorGraph(
  weights: ReadonlyMap<string, WeightTensor>,
  options: TinyFaceDetectorGraphOptions = {},
): TfjsGraph {
  const inputSize =
    options.inputSize === undefined ? TINY_FACE_DETECTOR_DEFAULT_INPUT_SIZE : options.inputSize
  if (inputSize !== null && (!Number.isInteger(inputSize) || inputSize <= 0 || inputSize % 32 !== 0)) {
    throw new Error(`tiny face detector: inputSize must be a positive multiple of 32, got ${inputSize}`)
  }
  const s = inputSize ?? -1
  const g = new GraphBuilder(weights)

  const x = g.placeholder(TINY_FACE_DETECTOR_INPUT, [-1, s, s, 3])
  const normalized = g.normalizeRgb(x, TINY_FACE_DETECTOR_MEAN_RGB)

  function separable(prefix: string, input: string): string {
    const dw = g.depthwiseConv2d(
      `${prefix}/depthwise`,
      input,
      g.weight(`${prefix}/depthwise_filter`, 4),
      1,
      'SAME',
    )
    const pw = g.conv2d(`${prefix}/pointwise`, dw, g.weight(`${prefix}/pointwise_filter`, 4), 1, 'VALID')
    const b = g.biasAdd(`${prefix}/BiasAdd`, pw, g.weight(`${prefix}/bias`, 1))
    return g.leakyRelu(`${prefix}/leaky`, b, LEAKY_ALPHA)
  }

  let out = g.conv2d('conv0/Conv2D', normalized, g.weight('conv0/filters', 4), 1, 'VALID')
  out = g.biasAdd('conv0/BiasAdd', out, g.weight('conv0/bias', 1))
  out = g.leakyRelu('conv0/leaky', out, LEAKY_ALPHA)
  out = g.pool('pool0', 'MaxPool', out, 2, 2, 'SAME')
  for (let i = 1; i <= 5; i++) {
    out = separable(`conv${i}`, out)
    out = g.pool(`pool${i}`, 'MaxPool', out, 2, i === 5 ? 1 : 2, 'SAME')
  }
  for (const optional of ['conv6', 'conv7']) {
    if (weights.has(`${optional}/depthwise_filter`)) out = separable(optional, out)
  }
  out = g.conv2d('conv8/Conv2D', out, g.weight('conv8/filters', 4), 1, 'VALID')
  g.biasAdd(TINY_FACE_DETECTOR_OUTPUT, out, g.weight('conv8/bias', 1))

  const channels = g.weightShape('conv8/filters')[3] ?? -1
  const grid = inputSize === null ? -1 : inputSize / 32
  return g.finish([{ name: TINY_FACE_DETECTOR_OUTPUT, shape: [-1, grid, grid, channels], dtype: 'float32' }])
}
