import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  analyzeFrame,
  createFrameBuffers,
  type FaceModels,
  type FrameBuffers,
  type TensorData,
} from '../../../server/pipeline/analyze.js'
import { singleLayout } from '../../../server/pipeline/embedding-layout.js'
import { encode, texturedScene } from '../../helpers/images.js'

const limits = { maxPixels: 4096 * 4096, maxSide: 4096 }
// 'all': with no detection, 'main' would go on to the centred guess and run the landmark net.
const options = { mode: 'all', maxFaces: 1 } as const

/**
 * Detectors that find nothing (so every frame runs both, at 416 and 512 px) and record a copy of
 * the input they were given, after yielding once as a real session does.
 */
function recordingModels(): { models: FaceModels; inputs: Float32Array[] } {
  const inputs: Float32Array[] = []
  const record = async (feeds: Record<string, TensorData>): Promise<Float32Array> => {
    const tensor = feeds['input']
    assert.ok(tensor !== undefined)
    await new Promise((resolve) => setImmediate(resolve))
    const copy = Float32Array.from(tensor.data)
    inputs.push(copy)
    return copy
  }
  const unused = () => Promise.reject(new Error('no face was found, this model must not run'))
  const models: FaceModels = {
    detector: {
      input: 'input',
      output: 'grid',
      inputSize: 416,
      run: async (feeds) => {
        await record(feeds)
        // Objectness logits of -100: no candidate at all.
        return { grid: { data: new Float32Array(13 * 13 * 25).fill(-100), dims: [1, 13, 13, 25] } }
      },
    },
    fallbackDetector: {
      input: 'input',
      boxes: 'boxes',
      scores: 'scores',
      run: async (feeds) => {
        await record(feeds)
        return {
          boxes: { data: new Float32Array(5118 * 4), dims: [1, 5118, 4] },
          scores: { data: new Float32Array(5118), dims: [1, 5118] },
        }
      },
    },
    landmarks: { input: 'input', output: 'landmarks', inputSize: 112, run: unused },
    embedder: {
      input: 'input',
      output: 'descriptor',
      chipSize: 150,
      framing: { padding: 0.25 },
      run: unused,
    },
    layout: singleLayout(128, 'test'),
  }
  return { models, inputs }
}

async function detectorInputs(frames: Uint8Array[], buffers?: FrameBuffers): Promise<Float32Array[]> {
  const { models, inputs } = recordingModels()
  for (const frame of frames) {
    const result = await analyzeFrame(frame, models, options, limits, buffers)
    assert.deepEqual(result.faces, [])
  }
  return inputs
}

test('reused frame buffers give every frame the detector inputs fresh buffers give it', async () => {
  // Landscape, portrait and square frames: the padding moves between frames.
  const frames = [
    await encode(texturedScene(320, 240, 1), 'png'),
    await encode(texturedScene(200, 300, 2), 'png'),
    await encode(texturedScene(250, 250, 3), 'png'),
    await encode(texturedScene(320, 240, 1), 'png'),
  ]
  const fresh = await detectorInputs(frames)
  const buffers = createFrameBuffers()
  const reused = await detectorInputs(frames, buffers)
  // Two detectors per frame: the 416 px one, then the 512 px fallback.
  assert.equal(fresh.length, 2 * frames.length)
  assert.equal(reused.length, fresh.length)
  reused.forEach((input, i) => {
    assert.deepEqual(input, fresh[i], `detector input ${i}`)
  })
  assert.equal(buffers.busy, false)
})

test('a frame that finds the buffers busy uses its own, so concurrent frames stay apart', async () => {
  const a = await encode(texturedScene(320, 240, 4), 'png')
  const b = await encode(texturedScene(240, 320, 5), 'png')
  const expected = [...(await detectorInputs([a])), ...(await detectorInputs([b]))]
  const { models, inputs } = recordingModels()
  const buffers = createFrameBuffers()
  await Promise.all([
    analyzeFrame(a, models, options, limits, buffers),
    analyzeFrame(b, models, options, limits, buffers),
  ])
  assert.equal(inputs.length, 4)
  for (const input of expected) assert.ok(inputs.some((seen) => seen.every((v, i) => Object.is(v, input[i]))))
  assert.equal(buffers.busy, false)
})

test('the buffers are released when a frame is refused', async () => {
  const { models } = recordingModels()
  const buffers = createFrameBuffers()
  await assert.rejects(analyzeFrame(new Uint8Array([1, 2, 3]), models, options, limits, buffers), {
    code: 'ERR_FRAME_UNSUPPORTED',
  })
  assert.equal(buffers.busy, false)
})
