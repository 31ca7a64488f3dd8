/**
 * face-api `FaceRecognitionNet`: the dlib ResNet-34-like face descriptor network (128-d output).
 *
 * Mirrors node_modules/@vladmandic/face-api/src/faceRecognitionNet/*.ts:
 *   x = (rgb - [122.782, 117.001, 104.298]) / 255          (face-api divides by 255, not 256)
 *   convDown(7x7, stride 2, VALID) + bias, * scale.weights + scale.biases, relu  -> 72x72x32
 *   maxPool 3x3 stride 2 VALID                                                 -> 35x35x32
 *   residual x3 (32), residualDown + residual x3 (64), residualDown + x2 (128),
 *   residualDown + x2 (256), residualDown (256, "conv256_down_out")
 *   mean over H,W -> [N, 256] -> matMul fc [256, 128] -> descriptor [N, 128]
 * residual:     relu(convNoRelu(conv(x)) + x), all 3x3 SAME stride 1
 * residualDown: conv1 3x3 stride 2 VALID (relu), conv2 3x3 SAME (no relu);
 *               shortcut = avgPool 2x2 stride 2 VALID of x, zero-padded on channels when the
 *               channel count doubles; when the conv branch is one row/column smaller than the
 *               shortcut (8->3 vs 4, 4->1 vs 2), it gets a zero row at the bottom and a zero column
 *               on the right (face-api concatenates zeros); then relu(shortcut + branch).
 */
import type { TfjsGraph } from '../types.js'
import { GraphBuilder } from './graph.js'
import type { WeightTensor } from './weights.js'

export const FACE_RECOGNITION_INPUT_SIZE = 150
export const FACE_RECOGNITION_MEAN_RGB = [122.782, 117.001, 104.298] as const
export const FACE_RECOGNITION_INPUT = 'input'
export const FACE_RECOGNITION_OUTPUT = 'descriptor'

interface Tensor4Info {
  name: string
  /** Static spatial size (square) and channel count. */
  size: number
  channels: number
}

const validOut = (size: number, k: number, s: number): number => Math.floor((size - k) / s) + 1

export function buildFaceRecognitionGraph(weights: ReadonlyMap<string, WeightTensor>): TfjsGraph {
  const g = new GraphBuilder(weights)
  const size = FACE_RECOGNITION_INPUT_SIZE

  const x = g.placeholder(FACE_RECOGNITION_INPUT, [-1, size, size, 3])
  const normalized = g.normalizeRgb(x, FACE_RECOGNITION_MEAN_RGB)

  /** conv + bias, then the affine "scale" layer, optional relu (face-api convLayer). */
  function convLayer(
    prefix: string,
    input: string,
    stride: number,
    padding: 'SAME' | 'VALID',
    relu: boolean,
  ): string {
    const filters = g.weight(`${prefix}/conv/filters`, 4)
    let out = g.conv2d(`${prefix}/conv/Conv2D`, input, filters, stride, padding)
    out = g.biasAdd(`${prefix}/conv/BiasAdd`, out, g.weight(`${prefix}/conv/bias`, 1))
    out = g.binary(`${prefix}/scale/Mul`, 'Mul', out, g.weight(`${prefix}/scale/weights`, 1))
    out = g.binary(`${prefix}/scale/Add`, 'AddV2', out, g.weight(`${prefix}/scale/biases`, 1))
    return relu ? g.unary(`${prefix}/Relu`, 'Relu', out) : out
  }

  const outChannels = (prefix: string): number => {
    const s = g.weightShape(`${prefix}/conv/filters`)
    const c = s[3]
    if (c === undefined) throw new Error(`${prefix}/conv/filters must be rank 4`)
    return c
  }

  function residual(prefix: string, t: Tensor4Info): Tensor4Info {
    const c1 = convLayer(`${prefix}/conv1`, t.name, 1, 'SAME', true)
    const c2 = convLayer(`${prefix}/conv2`, c1, 1, 'SAME', false)
    const sum = g.binary(`${prefix}/add`, 'AddV2', c2, t.name)
    return { name: g.unary(`${prefix}/relu`, 'Relu', sum), size: t.size, channels: t.channels }
  }

  function residualDown(prefix: string, t: Tensor4Info): Tensor4Info {
    const c1 = convLayer(`${prefix}/conv1`, t.name, 2, 'VALID', true)
    let branch = convLayer(`${prefix}/conv2`, c1, 1, 'SAME', false)
    const branchSize = validOut(t.size, 3, 2)
    const channels = outChannels(`${prefix}/conv2`)

    let shortcut = g.pool(`${prefix}/shortcut/AvgPool`, 'AvgPool', t.name, 2, 2, 'VALID')
    const pooledSize = validOut(t.size, 2, 2)
    if (channels !== t.channels) {
      // face-api: concat([pooled, zeros(pooled.shape)], 3) -> channels doubled with zeros.
      if (channels !== 2 * t.channels)
        throw new Error(`${prefix}: unexpected channel change ${t.channels} -> ${channels}`)
      shortcut = g.pad(`${prefix}/shortcut/pad_channels`, shortcut, [
        [0, 0],
        [0, 0],
        [0, 0],
        [0, t.channels],
      ])
    }
    if (branchSize !== pooledSize) {
      // face-api appends exactly one zero row (axis 1) and one zero column (axis 2).
      if (pooledSize !== branchSize + 1)
        throw new Error(`${prefix}: cannot reconcile ${branchSize} with ${pooledSize}`)
      branch = g.pad(`${prefix}/pad_spatial`, branch, [
        [0, 0],
        [0, 1],
        [0, 1],
        [0, 0],
      ])
    }
    const sum = g.binary(`${prefix}/add`, 'AddV2', shortcut, branch)
    return { name: g.unary(`${prefix}/relu`, 'Relu', sum), size: pooledSize, channels }
  }

  const stem = convLayer('conv32_down', normalized, 2, 'VALID', true)
  let t: Tensor4Info = { name: stem, size: validOut(size, 7, 2), channels: outChannels('conv32_down') }
  t = { ...t, name: g.pool('stem/MaxPool', 'MaxPool', t.name, 3, 2, 'VALID'), size: validOut(t.size, 3, 2) }

  t = residual('conv32_1', t)
  t = residual('conv32_2', t)
  t = residual('conv32_3', t)
  t = residualDown('conv64_down', t)
  t = residual('conv64_1', t)
  t = residual('conv64_2', t)
  t = residual('conv64_3', t)
  t = residualDown('conv128_down', t)
  t = residual('conv128_1', t)
  t = residual('conv128_2', t)
  t = residualDown('conv256_down', t)
  t = residual('conv256_1', t)
  t = residual('conv256_2', t)
  t = residualDown('conv256_down_out', t)

  const pooled = g.mean('global_avg/Mean', t.name, [1, 2], false)
  const fc = g.weight('fc', 2)
  g.matMul(FACE_RECOGNITION_OUTPUT, pooled, fc)
  return g.finish([{ name: FACE_RECOGNITION_OUTPUT, shape: [-1, 128], dtype: 'float32' }])
}
