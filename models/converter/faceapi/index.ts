/**
 * Recipes that turn @vladmandic/face-api weight manifests into TFJS graphs for the ONNX converter.
 *
 * face-api ships only weights (`model/*-weights_manifest.json` + `.bin`); the architectures live in
 * its JS code. The builders in this folder re-create those architectures as TensorFlow graphs
 * (TFJS model.json node format) whose first ops perform face-api's input normalisation, so every
 * converted model takes raw RGB pixels 0..255, float32, NHWC.
 */
import { createRequire } from 'node:module'
import path from 'node:path'
import type { ConvertOptions, ModelRecipe, Preprocessing, TensorSpec, TfjsGraph } from '../types.js'
import {
  buildFaceLandmark68Graph,
  FACE_LANDMARK_INPUT,
  FACE_LANDMARK_INPUT_SIZE,
  FACE_LANDMARK_OUTPUT,
} from './faceLandmark68Net.js'
import {
  buildFaceRecognitionGraph,
  FACE_RECOGNITION_INPUT,
  FACE_RECOGNITION_INPUT_SIZE,
  FACE_RECOGNITION_OUTPUT,
} from './faceRecognitionNet.js'
import {
  buildTinyFaceDetectorGraph,
  TINY_FACE_DETECTOR_DEFAULT_INPUT_SIZE,
  TINY_FACE_DETECTOR_INPUT,
  TINY_FACE_DETECTOR_OUTPUT,
} from './tinyFaceDetector.js'
import {
  buildSsdMobilenetv1Graph,
  SSD_MOBILENETV1_BOXES,
  SSD_MOBILENETV1_INPUT,
  SSD_MOBILENETV1_INPUT_SIZE,
  SSD_MOBILENETV1_SCORES,
} from './ssdMobilenetv1.js'
import { loadWeightsManifest, type WeightTensor } from './weights.js'

export * from '../../../server/pipeline/detectors/landmarks68-decode.js'
export * from './faceLandmark68Net.js'
export * from './faceRecognitionNet.js'
export * from './graph.js'
export * from './ssdMobilenetv1.js'
export * from '../../../server/pipeline/detectors/tiny-face-decode.js'
export * from './tinyFaceDetector.js'
export * from './weights.js'
export type { ModelRecipe, Preprocessing, TfjsGraph } from '../types.js'

export const FACE_API_PACKAGE = '@vladmandic/face-api'

/** Absolute path of the installed @vladmandic/face-api package. */
export function faceApiPackageDir(): string {
  const require = createRequire(import.meta.url)
  return path.dirname(require.resolve(`${FACE_API_PACKAGE}/package.json`))
}

/** Decoded weights of `model/<name>-weights_manifest.json` from the installed face-api. */
export function loadFaceApiWeights(
  name: string,
  packageDir = faceApiPackageDir(),
): Promise<Map<string, WeightTensor>> {
  return loadWeightsManifest(path.join(packageDir, 'model', `${name}-weights_manifest.json`))
}

/** A ModelRecipe plus the graph-level description of its outputs. */
export interface FaceApiRecipe extends ModelRecipe {
  /** Name of the weight manifest under the package's model/ folder. */
  manifest: string
  inputs: TensorSpec[]
  outputs: (TensorSpec & { description: string })[]
  /** How to turn the outputs into results (matching face-api). */
  postprocessing: string
  /** Builds the TFJS graph from explicitly supplied weights (tests, custom weight files). */
  buildGraph(weights: ReadonlyMap<string, WeightTensor>): TfjsGraph
  build(): Promise<{ graph: TfjsGraph; options: ConvertOptions }>
}

const sourceFiles = (manifest: string): string[] => [
  `model/${manifest}-weights_manifest.json`,
  `model/${manifest}.bin`,
]

function recipe(r: Omit<FaceApiRecipe, 'build' | 'source' | 'license'> & { origin: string }): FaceApiRecipe {
  const { origin, ...rest } = r
  return {
    ...rest,
    license: 'MIT',
    source: { package: FACE_API_PACKAGE, files: sourceFiles(r.manifest), origin },
    async build() {
      const graph = r.buildGraph(await loadFaceApiWeights(r.manifest))
      return {
        graph,
        options: {
          batch: 'dynamic',
          inputs: r.inputs.map((i) => ({ tensor: i.name, name: i.name })),
          outputs: r.outputs.map((o) => ({ tensor: o.name, name: o.name })),
          docString: `${r.description} Converted from ${FACE_API_PACKAGE} ${r.manifest} (MIT).`,
        },
      }
    },
  }
}

const rawRgb = (size: number, notes: string): Preprocessing => ({
  width: size,
  height: size,
  channels: 'RGB',
  layout: 'NHWC',
  dtype: 'float32',
  scale: 1,
  offset: 0,
  range: [0, 255],
  notes,
})

function tinyDetectorRecipe(id: string, size: number): FaceApiRecipe {
  const grid = size / 32
  return recipe({
    id,
    manifest: 'tiny_face_detector_model',
    description: `face-api TinyFaceDetector: Tiny-YOLOv2-style face detector (5 anchors, ${String(grid)}x${String(grid)} grid at ${String(size)}x${String(size)}).`,
    origin: 'justadudewhohacks/face-api.js tiny_face_detector_model',
    preprocessing: rawRgb(
      size,
      'Raw RGB 0..255; the graph computes (x - [117.001, 114.697, 97.404]) / 255. ' +
        `The whole image is zero-padded at the bottom/right (not centred) to a square and resized bilinearly to ${String(size)}x${String(size)}.`,
    ),
    inputs: [{ name: TINY_FACE_DETECTOR_INPUT, dtype: 'float32', shape: ['N', size, size, 3] }],
    outputs: [
      {
        name: TINY_FACE_DETECTOR_OUTPUT,
        dtype: 'float32',
        shape: ['N', grid, grid, 25],
        description: 'per cell, 5 anchors x [tx, ty, tw, th, objectness] logits',
      },
    ],
    postprocessing: `decodeTinyFaceDetectorGrid(grid, {inputSize: ${String(size)}, imageWidth, imageHeight}): sigmoid/exp anchor decoding, score > 0.5, NMS IoU 0.4.`,
    buildGraph: (w) => buildTinyFaceDetectorGraph(w, { inputSize: size }),
  })
}

export const faceApiRecipes: readonly FaceApiRecipe[] = [
  recipe({
    id: 'faceapi-face-recognition',
    manifest: 'face_recognition_model',
    description:
      'face-api FaceRecognitionNet (dlib ResNet-34 style) 128-d face descriptor; compare with euclidean distance (face-api match threshold 0.6).',
    origin: 'dlib dlib_face_recognition_resnet_model_v1 ported to TFJS by justadudewhohacks/face-api.js',
    preprocessing: rawRgb(
      FACE_RECOGNITION_INPUT_SIZE,
      'Raw RGB 0..255; the graph itself computes (x - [122.782, 117.001, 104.298]) / 255 (face-api divides by 255). ' +
        'face-api crops the dlib alignment box (dlibAlignmentBox of the 68 landmarks, clipped to the image), ' +
        'zero-pads it to a square centred (append round(d/2), prepend the rest, d = |w - h|) and resizes it bilinearly ' +
        '(align_corners=false, half_pixel_centers=false) to 150x150. No rotation.',
    ),
    inputs: [
      {
        name: FACE_RECOGNITION_INPUT,
        dtype: 'float32',
        shape: ['N', FACE_RECOGNITION_INPUT_SIZE, FACE_RECOGNITION_INPUT_SIZE, 3],
      },
    ],
    outputs: [
      {
        name: FACE_RECOGNITION_OUTPUT,
        dtype: 'float32',
        shape: ['N', 128],
        description: 'face descriptor, not L2-normalised',
      },
    ],
    alignment: { padding: 0.25 },
    postprocessing:
      'Use the 128 values as is; face-api compares descriptors by euclidean distance (same person below ~0.6).',
    buildGraph: (w) => buildFaceRecognitionGraph(w),
  }),
  recipe({
    id: 'faceapi-landmark68',
    manifest: 'face_landmark_68_model',
    description: 'face-api FaceLandmark68Net: 68 facial landmarks (iBUG 300-W layout) of a face crop.',
    origin: 'justadudewhohacks/face-api.js face_landmark_68_model',
    preprocessing: rawRgb(
      FACE_LANDMARK_INPUT_SIZE,
      'Raw RGB 0..255; the graph computes (x - [122.782, 117.001, 104.298]) / 255. ' +
        'Input is the face detection box crop, zero-padded to a square centred and resized bilinearly to 112x112.',
    ),
    inputs: [
      {
        name: FACE_LANDMARK_INPUT,
        dtype: 'float32',
        shape: ['N', FACE_LANDMARK_INPUT_SIZE, FACE_LANDMARK_INPUT_SIZE, 3],
      },
    ],
    outputs: [
      {
        name: FACE_LANDMARK_OUTPUT,
        dtype: 'float32',
        shape: ['N', 136],
        description: 'x0, y0, ..., x67, y67 in 0..1 relative to the padded 112x112 input',
      },
    ],
    postprocessing:
      'landmarksToImage(raw, cropRect) maps to image pixels (undoes the centred padding like face-api postProcess).',
    buildGraph: (w) => buildFaceLandmark68Graph(w),
  }),
  tinyDetectorRecipe('faceapi-tiny-face-detector', TINY_FACE_DETECTOR_DEFAULT_INPUT_SIZE),
  // The same weights at 224 px (7x7 grid): for crops whose face fills much of the frame (kiosk
  // streams), where 416 px only upsamples the crop; about 3.5x less work.
  tinyDetectorRecipe('faceapi-tiny-face-detector-224', 224),
  recipe({
    id: 'faceapi-ssd-mobilenetv1',
    manifest: 'ssd_mobilenetv1_model',
    description:
      'face-api SsdMobilenetv1: SSD face detector (MobileNetV1 backbone, 5118 anchors), box decoding included.',
    origin: 'justadudewhohacks/face-api.js ssd_mobilenetv1_model (TF object detection API, WIDER FACE)',
    preprocessing: rawRgb(
      SSD_MOBILENETV1_INPUT_SIZE,
      'Raw RGB 0..255; the graph computes x / 127.5 - 1. ' +
        'The whole image is zero-padded at the bottom/right (not centred) to a square and resized bilinearly to 512x512.',
    ),
    inputs: [
      {
        name: SSD_MOBILENETV1_INPUT,
        dtype: 'float32',
        shape: ['N', SSD_MOBILENETV1_INPUT_SIZE, SSD_MOBILENETV1_INPUT_SIZE, 3],
      },
    ],
    outputs: [
      {
        name: SSD_MOBILENETV1_BOXES,
        dtype: 'float32',
        shape: ['N', 5118, 4],
        description: 'ymin, xmin, ymax, xmax relative to the padded 512x512 input, unclipped',
      },
      {
        name: SSD_MOBILENETV1_SCORES,
        dtype: 'float32',
        shape: ['N', 5118],
        description: 'face probability per anchor',
      },
    ],
    postprocessing:
      'decodeSsdMobilenetv1(boxes, scores, {imageWidth, imageHeight}): score > 0.5, greedy NMS IoU 0.5, max 100, clip, unpad.',
    buildGraph: (w) => buildSsdMobilenetv1Graph(w),
  }),
]
