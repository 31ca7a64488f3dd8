/**
 * face-api `FaceLandmark68Net` (face_landmark_68_model): 68 facial landmarks.
 *
 * Mirrors face-api src/faceFeatureExtractor/FaceFeatureExtractor.ts + denseBlock.ts and
 * src/faceProcessor/FaceProcessor.ts:
 *   x = (rgb - [122.782, 117.001, 104.298]) / 255, input 112x112
 *   dense0..dense3 = denseBlock4 (each halves H,W: 112 -> 56 -> 28 -> 14 -> 7; 32/64/128/256 ch)
 *     out1 = relu(conv0(x, stride 2))   (dense0: plain 3x3 conv; others: separable conv)
 *     out2 = sep(out1); out3 = sep(relu(out1 + out2)); out4 = sep(relu(out1 + out2 + out3))
 *     y = relu(out1 + out2 + out3 + out4)
 *     sep(x) = pointwise1x1(depthwise3x3(x, SAME)) + bias   (tf.separableConv2d)
 *   avgPool 7x7 stride 2 VALID -> [N,1,1,256] -> reshape [N,256] -> fc (256 -> 136) + bias
 * Output [N, 136]: x0, y0, x1, y1, ... in 0..1 relative to the 112x112 input (the padded square).
 * face-api's postProcess then maps these to the original (unpadded) crop; see index.ts.
 */
import type { TfjsGraph } from '../types.js'
import { GraphBuilder } from './graph.js'
import type { WeightTensor } from './weights.js'

export const FACE_LANDMARK_INPUT_SIZE = 112
export const FACE_LANDMARK_MEAN_RGB = [122.782, 117.001, 104.298] as const
export const FACE_LANDMARK_INPUT = 'input'
export const FACE_LANDMARK_OUTPUT = 'landmarks'

export function buildFaceLandmark68Graph(weights: ReadonlyMap<string, WeightTensor>): TfjsGraph {
  const g = new GraphBuilder(weights)
  const size = FACE_LANDMARK_INPUT_SIZE

  const x = g.placeholder(FACE_LANDMARK_INPUT, [-1, size, size, 3])
  const normalized = g.normalizeRgb(x, FACE_LANDMARK_MEAN_RGB)

  function separable(prefix: string, input: string, stride: number): string {
    const dw = g.depthwiseConv2d(
      `${prefix}/depthwise`,
      input,
      g.weight(`${prefix}/depthwise_filter`, 4),
      stride,
      'SAME',
    )
    const pw = g.conv2d(`${prefix}/pointwise`, dw, g.weight(`${prefix}/pointwise_filter`, 4), 1, 'VALID')
    return g.biasAdd(`${prefix}/BiasAdd`, pw, g.weight(`${prefix}/bias`, 1))
  }

  function denseBlock4(prefix: string, input: string, isFirstLayer: boolean): string {
    let conv0: string
    if (isFirstLayer) {
      const c = g.conv2d(`${prefix}/conv0/Conv2D`, input, g.weight(`${prefix}/conv0/filters`, 4), 2, 'SAME')
      conv0 = g.biasAdd(`${prefix}/conv0/BiasAdd`, c, g.weight(`${prefix}/conv0/bias`, 1))
    } else {
      conv0 = separable(`${prefix}/conv0`, input, 2)
    }
    const out1 = g.unary(`${prefix}/out1`, 'Relu', conv0)
    const out2 = separable(`${prefix}/conv1`, out1, 1)
    const in3 = g.unary(`${prefix}/in3`, 'Relu', g.binary(`${prefix}/add_1_2`, 'AddV2', out1, out2))
    const out3 = separable(`${prefix}/conv2`, in3, 1)
    // Same association as face-api: out1 + (out2 + out3) and out1 + (out2 + (out3 + out4)).
    const s23 = g.binary(`${prefix}/add_2_3`, 'AddV2', out2, out3)
    const in4 = g.unary(`${prefix}/in4`, 'Relu', g.binary(`${prefix}/add_1_23`, 'AddV2', out1, s23))
    const out4 = separable(`${prefix}/conv3`, in4, 1)
    const s34 = g.binary(`${prefix}/add_3_4`, 'AddV2', out3, out4)
    const s234 = g.binary(`${prefix}/add_2_34`, 'AddV2', out2, s34)
    return g.unary(`${prefix}/out`, 'Relu', g.binary(`${prefix}/add_1_234`, 'AddV2', out1, s234))
  }

  let out = denseBlock4('dense0', normalized, true)
  out = denseBlock4('dense1', out, false)
  out = denseBlock4('dense2', out, false)
  out = denseBlock4('dense3', out, false)
  out = g.pool('features/AvgPool', 'AvgPool', out, 7, 2, 'VALID')
  const fcIn = g.weightShape('fc/weights')[0]
  if (fcIn === undefined) throw new Error('fc/weights must be rank 2')
  const flat = g.reshape('features/flatten', out, [-1, fcIn])
  const mm = g.matMul('fc/MatMul', flat, g.weight('fc/weights', 2))
  g.binary(FACE_LANDMARK_OUTPUT, 'AddV2', mm, g.weight('fc/bias', 1))

  return g.finish([{ name: FACE_LANDMARK_OUTPUT, shape: [-1, 136], dtype: 'float32' }])
}
