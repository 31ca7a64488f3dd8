/**
 * face-api `SsdMobilenetv1` (ssd_mobilenetv1_model): SSD face detector on a MobileNetV1 backbone.
 *
 * Mirrors face-api src/ssdMobilenetv1/*.ts:
 *   x = rgb / 127.5 - 1, input 512x512 (whole image zero-padded bottom/right to a square, resized)
 *   MobileNetV1: conv_0 3x3 stride 2 + bn offset, relu6; 13 x [depthwise 3x3 (stride 2 at layers
 *   2, 4, 6, 12) + batchNorm(eps 1e-3) + relu6, pointwise 1x1 + bn offset + relu6]; conv11 kept.
 *   Prediction: 8 pointwise layers (odd ones 3x3 stride 2) and 6 box predictors on
 *   conv11 (32x32, 3 anchors), conv13 (16x16), p1 (8x8), p3 (4x4), p5 (2x2), p7 (1x1) (6 anchors)
 *   -> 5118 anchors.
 *   Box decoding against the 5118 anchors (Output/extra_dim, [ymin, xmin, ymax, xmax]) is in the
 *   graph: centre = enc[yx] / 10 * size + anchorCentre; half = exp(enc[hw] / 5) * size / 2.
 * Outputs:
 *   boxes  [N, 5118, 4] ymin, xmin, ymax, xmax relative to the padded 512x512 input (unclipped)
 *   scores [N, 5118]    sigmoid of the face class logit
 * Then decodeSsdMobilenetv1 (score > 0.5, NMS IoU 0.5, at most 100) reproduces locateFaces.
 */
import type { TfjsGraph } from '../types.js'
import { GraphBuilder } from './graph.js'
import type { WeightTensor } from './weights.js'

export { SSD_MOBILENETV1_INPUT_SIZE } from '../../../server/pipeline/detectors/ssd-decode.js'
import { SSD_MOBILENETV1_INPUT_SIZE } from '../../../server/pipeline/detectors/ssd-decode.js'
export const SSD_MOBILENETV1_INPUT = 'input'
export const SSD_MOBILENETV1_BOXES = 'boxes'
export const SSD_MOBILENETV1_SCORES = 'scores'
const BN_EPSILON = 0.0010000000474974513

const USED_PREFIXES = ['MobilenetV1/', 'Prediction/Conv2d_', 'Output/extra_dim']
const isUsed = (name: string): boolean =>
  USED_PREFIXES.some((p) => name.startsWith(p)) ||
  /^Prediction\/BoxPredictor_\d\/(BoxEncodingPredictor|ClassPredictor)\//.test(name)

export function buildSsdMobilenetv1Graph(weights: ReadonlyMap<string, WeightTensor>): TfjsGraph {
  const g = new GraphBuilder(weights)
  const size = SSD_MOBILENETV1_INPUT_SIZE
  const x = g.placeholder(SSD_MOBILENETV1_INPUT, [-1, size, size, 3])
  const scaled = g.binary('preprocess/div', 'RealDiv', x, g.floats('preprocess/divisor', [127.5], []))
  const normalized = g.binary('preprocess/sub', 'Sub', scaled, g.floats('preprocess/one', [1], []))

  const spatial = new Map<string, number>()
  spatial.set(normalized, size)
  const sizeOf = (t: string): number => {
    const s = spatial.get(t)
    if (s === undefined) throw new Error(`ssd: unknown spatial size of ${t}`)
    return s
  }

  /** face-api pointwiseConvLayer: conv (any kernel) SAME + bn offset, relu6. */
  function pointwise(prefix: string, input: string, stride: number): string {
    let out = g.conv2d(`${prefix}/Conv2D`, input, g.weight(`${prefix}/weights`, 4), stride, 'SAME')
    out = g.binary(`${prefix}/add_offset`, 'AddV2', out, g.weight(`${prefix}/convolution_bn_offset`, 1))
    out = g.unary(`${prefix}/Relu6`, 'Relu6', out)
    spatial.set(out, Math.ceil(sizeOf(input) / stride))
    return out
  }

  function depthwise(prefix: string, input: string, stride: number): string {
    let out = g.depthwiseConv2d(
      `${prefix}/depthwise`,
      input,
      g.weight(`${prefix}/depthwise_weights`, 4),
      stride,
      'SAME',
    )
    out = g.fusedBatchNorm(
      `${prefix}/BatchNorm`,
      out,
      g.weight(`${prefix}/BatchNorm/gamma`, 1),
      g.weight(`${prefix}/BatchNorm/beta`, 1),
      g.weight(`${prefix}/BatchNorm/moving_mean`, 1),
      g.weight(`${prefix}/BatchNorm/moving_variance`, 1),
      BN_EPSILON,
    )
    out = g.unary(`${prefix}/Relu6`, 'Relu6', out)
    spatial.set(out, Math.ceil(sizeOf(input) / stride))
    return out
  }

  let out = pointwise('MobilenetV1/Conv2d_0_pointwise', normalized, 2)
  let conv11 = ''
  for (let i = 1; i <= 13; i++) {
    out = depthwise(`MobilenetV1/Conv2d_${i}_depthwise`, out, [2, 4, 6, 12].includes(i) ? 2 : 1)
    out = pointwise(`MobilenetV1/Conv2d_${i}_pointwise`, out, 1)
    if (i === 11) conv11 = out
  }
  const p: string[] = []
  let prev = out
  for (let i = 0; i < 8; i++) {
    prev = pointwise(`Prediction/Conv2d_${i}_pointwise`, prev, i % 2 === 1 ? 2 : 1)
    p.push(prev)
  }
  const sources = [conv11, out, p[1], p[3], p[5], p[7]]

  const boxParts: string[] = []
  const classParts: string[] = []
  let numAnchors = 0
  sources.forEach((src, idx) => {
    if (src === undefined) throw new Error('ssd: missing predictor source')
    const prefix = `Prediction/BoxPredictor_${idx}`
    const cells = sizeOf(src) ** 2
    const boxCh = g.weightShape(`${prefix}/BoxEncodingPredictor/weights`)[3] ?? 0
    const anchors = (cells * boxCh) / 4
    const conv = (kind: string): string => {
      const c = g.conv2d(`${prefix}/${kind}/Conv2D`, src, g.weight(`${prefix}/${kind}/weights`, 4), 1, 'SAME')
      return g.biasAdd(`${prefix}/${kind}/BiasAdd`, c, g.weight(`${prefix}/${kind}/biases`, 1))
    }
    boxParts.push(g.reshape(`${prefix}/box_reshape`, conv('BoxEncodingPredictor'), [-1, anchors, 4]))
    classParts.push(g.reshape(`${prefix}/class_reshape`, conv('ClassPredictor'), [-1, anchors, 3]))
    numAnchors += anchors
  })
  const enc = g.concat('Prediction/box_encodings', boxParts, 1)
  const cls = g.concat('Prediction/class_predictions', classParts, 1)

  // Anchor-derived constants, computed in float32 exactly as face-api's graph does at run time.
  const anchorsT = weights.get('Output/extra_dim')
  if (!anchorsT || anchorsT.data.length !== numAnchors * 4) {
    throw new Error(`ssd: Output/extra_dim must hold ${numAnchors} anchors`)
  }
  const f = Math.fround
  const sizes = new Float32Array(numAnchors * 2)
  const centres = new Float32Array(numAnchors * 2)
  for (let i = 0; i < numAnchors; i++) {
    const a = (k: number): number => anchorsT.data[i * 4 + k] as number
    for (let k = 0; k < 2; k++) {
      const s = f(a(k + 2) - a(k))
      sizes[i * 2 + k] = s
      centres[i * 2 + k] = f(a(k) + f(s / 2))
    }
  }
  g.markUsed('Output/extra_dim')
  const sz = g.constant('Output/anchor_sizes', { data: sizes, shape: [numAnchors, 2], dtype: 'float32' })
  const ct = g.constant('Output/anchor_centres', { data: centres, shape: [numAnchors, 2], dtype: 'float32' })
  const all = { beginMask: 0b11, endMask: 0b11 }
  const yx = g.stridedSlice('Output/enc_yx', enc, [0, 0, 0], [0, 0, 2], [1, 1, 1], all)
  const hw = g.stridedSlice('Output/enc_hw', enc, [0, 0, 2], [0, 0, 4], [1, 1, 1], all)
  const ten = g.floats('Output/ten', [10], [])
  const five = g.floats('Output/five', [5], [])
  const two = g.floats('Output/two', [2], [])
  const centre = g.binary(
    'Output/centre',
    'AddV2',
    g.binary('Output/centre_mul', 'Mul', g.binary('Output/centre_div', 'RealDiv', yx, ten), sz),
    ct,
  )
  const expo = g.unary('Output/exp', 'Exp', g.binary('Output/hw_div', 'RealDiv', hw, five))
  const half = g.binary('Output/half', 'RealDiv', g.binary('Output/half_mul', 'Mul', expo, sz), two)
  g.concat(
    SSD_MOBILENETV1_BOXES,
    [g.binary('Output/min', 'Sub', centre, half), g.binary('Output/max', 'AddV2', centre, half)],
    2,
  )
  const logit = g.stridedSlice('Output/face_logit', cls, [0, 0, 1], [0, 0, 2], [1, 1, 1], all)
  const prob = g.unary('Output/sigmoid', 'Sigmoid', logit)
  g.reshape(SSD_MOBILENETV1_SCORES, prob, [-1, numAnchors])

  return g.finish(
    [
      { name: SSD_MOBILENETV1_BOXES, shape: [-1, numAnchors, 4], dtype: 'float32' },
      { name: SSD_MOBILENETV1_SCORES, shape: [-1, numAnchors], dtype: 'float32' },
    ],
    { allowUnused: [...weights.keys()].filter((k) => !isUsed(k)) },
  )
}

export { decodeSsdMobilenetv1 } from '../../../server/pipeline/detectors/ssd-decode.js'
export type { SsdDecodeOptions, SsdDetection } from '../../../server/pipeline/detectors/ssd-decode.js'
