/**
 * Recipes that take ONNX files as they are from the npm package faceplugin-face-recognition-js.
 *
 * The package declares jest, webpack and eslint 8 as runtime dependencies, so the project never
 * installs it: the build packs the pinned version with `npm pack` (checked against npm's
 * integrity string), unpacks the model files it needs into a cache folder and hashes them. The
 * ONNX files are copied byte for byte; their inputs, outputs and opset are read from the files.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { ModelRecipe, Preprocessing } from './types.js'

const run = promisify(execFile)

export const FACEPLUGIN_PACKAGE = 'faceplugin-face-recognition-js'
export const FACEPLUGIN_VERSION = '0.0.1'
/** `npm view faceplugin-face-recognition-js@0.0.1 dist.integrity` */
export const FACEPLUGIN_INTEGRITY =
  'sha512-shriXjd4zJHEwhK1jHK+bWo8Vv6Vu9B/w6RRsd4AFtNM/jaI2vhuOamOSMl9qQmLd8WlQ7dgqN+3C2iOi5pXWw=='
const ORIGIN = 'https://github.com/Faceplugin-ltd/FaceRecognition-LivenessDetection-Javascript'

/** Where packed tarballs and unpacked files are kept between builds. */
export const FACEPLUGIN_CACHE = fileURLToPath(
  new URL('../../../node_modules/.cache/facewire-models/', import.meta.url),
)

const PROVENANCE =
  'Copied byte for byte from the npm package faceplugin-face-recognition-js@0.0.1 (published ' +
  '2026-08-24, repository Faceplugin-ltd/FaceRecognition-LivenessDetection-Javascript). Its ' +
  'LICENSE is the MIT text with "Copyright (c) 2021 gitguanqi", a template from another project; ' +
  'the README names no training data, no training code and no upstream model, and claims NIST ' +
  'FRVT and iBeta results that the package does not document. The graphs were exported by ' +
  'PyTorch (1.10 for the embedder, 1.7 for liveness and eyes); the embedder keeps the source ' +
  'paths of its export (E:\\24.Jobs\\humanode\\bioauth-ml\\...\\face_feature\\model\\mobilefacenet.py): ' +
  'a MobileFaceNet from a project named bioauth-ml, apparently contract work. Not known: who ' +
  'owns the weights, on what data they were trained, under which terms they may be shared. ' +
  'Treat the licence as unclear before shipping these weights in a product.'

/** The package's tarball in the cache, packed once from the registry and checked. */
async function packedTarball(): Promise<string> {
  await mkdir(FACEPLUGIN_CACHE, { recursive: true })
  const file = path.join(FACEPLUGIN_CACHE, `${FACEPLUGIN_PACKAGE}-${FACEPLUGIN_VERSION}.tgz`)
  const integrityOf = async (): Promise<string | undefined> => {
    try {
      return `sha512-${createHash('sha512')
        .update(await readFile(file))
        .digest('base64')}`
    } catch {
      return undefined
    }
  }
  if ((await integrityOf()) !== FACEPLUGIN_INTEGRITY) {
    await rm(file, { force: true })
    await run('npm', [
      'pack',
      `${FACEPLUGIN_PACKAGE}@${FACEPLUGIN_VERSION}`,
      '--pack-destination',
      FACEPLUGIN_CACHE,
      '--ignore-scripts',
      '--silent',
    ])
    const integrity = await integrityOf()
    if (integrity !== FACEPLUGIN_INTEGRITY) {
      throw new Error(`${FACEPLUGIN_PACKAGE}@${FACEPLUGIN_VERSION}: tarball integrity ${String(integrity)}`)
    }
  }
  return file
}

/** Absolute folder holding the package's unpacked files (`<dir>/package/...`). */
export async function facepluginPackageDir(files: readonly string[]): Promise<string> {
  const tarball = await packedTarball()
  const dir = path.join(FACEPLUGIN_CACHE, `${FACEPLUGIN_PACKAGE}-${FACEPLUGIN_VERSION}`)
  await mkdir(dir, { recursive: true })
  await run('tar', ['-xzf', tarball, '-C', dir, ...files.map((f) => `package/${f}`)])
  return path.join(dir, 'package')
}

function recipe(
  id: string,
  file: string,
  description: string,
  preprocessing: Preprocessing,
  alignment?: ModelRecipe['alignment'],
): ModelRecipe {
  const files = [`model/${file}`]
  return {
    id,
    description,
    license: 'MIT (as stated by the package; see provenance)',
    provenance: PROVENANCE,
    source: {
      package: FACEPLUGIN_PACKAGE,
      files,
      origin: ORIGIN,
      tarball: { version: FACEPLUGIN_VERSION, integrity: FACEPLUGIN_INTEGRITY },
    },
    preprocessing,
    ...(alignment === undefined ? {} : { alignment }),
    async build() {
      const dir = await facepluginPackageDir(files)
      return { onnx: new Uint8Array(await readFile(path.join(dir, files[0] ?? ''))) }
    },
  }
}

export const facepluginRecipes: ModelRecipe[] = [
  recipe(
    'faceplugin-feature',
    'fr_feature.onnx',
    'MobileFaceNet-style face embedder: 512-d descriptor (L2-normalise before cosine matching)',
    {
      width: 112,
      height: 112,
      channels: 'BGR',
      layout: 'NCHW',
      dtype: 'float32',
      scale: 1 / 128,
      offset: -127 / 128,
      range: [-127 / 128, 1],
      notes:
        'Face warped by the least-squares similarity from its five points onto the ArcFace template ' +
        'at 112 px (bilinear), (pixel - 127) / 128, planar. The package feeds RGB from a canvas; BGR ' +
        'scores better on LFW View 1 pairsDevTrain and on the open-set protocol (docs/models.md), so ' +
        'the model was most likely trained on OpenCV (BGR) images. Batch fixed to 1 by the graph.',
    },
    { template: 'arcface' },
  ),
  {
    ...recipe(
      'faceplugin-landmark',
      'fr_landmark.onnx',
      '68-point face landmarks (iBUG 300-W order): 136 values, x and y in 0..1 of the face crop',
      {
        width: 64,
        height: 64,
        channels: 'GRAY',
        layout: 'NCHW',
        dtype: 'float32',
        scale: 1 / 256,
        offset: 0,
        range: [0, 255 / 256],
        notes:
          "The face box of the package's detector (fr_detect.onnx), kept inside the image, resized " +
          'to 64x64 (bilinear), grey, pixel / 256, planar. The pipeline reframes its own boxes to ' +
          "match (server/pipeline/detectors/faceplugin-landmarks.ts) and takes the package's five " +
          'points of the 68. Batch fixed to 1.',
      },
    ),
    landmarkFraming: 'faceplugin',
  },
  recipe(
    'faceplugin-liveness',
    'fr_liveness.onnx',
    'Passive liveness classifier: 3 logits; softmax class 0 is the real-face score',
    {
      width: 128,
      height: 128,
      channels: 'BGR',
      layout: 'NCHW',
      dtype: 'float32',
      scale: 1,
      offset: 0,
      range: [0, 255],
      notes:
        'A square of 2.7x the face box around its centre (shrunk to fit inside the image, then ' +
        'shifted inside it), resized to 128x128, raw 0..255, planar. Batch fixed to 1.',
    },
  ),
  recipe(
    'faceplugin-eye',
    'fr_eye.onnx',
    'Eye state classifier on one eye: 2 logits (softmax class 0 = closed, 1 = open; see docs/models.md)',
    {
      width: 24,
      height: 24,
      channels: 'GRAY',
      layout: 'NCHW',
      dtype: 'float32',
      scale: 1 / 255,
      offset: 0,
      range: [0, 1],
      notes:
        'A square around one eye (centre: mean of its 4 inner contour points of the 68, side 1.6x ' +
        'the eye corner distance), grey, resized to 24x24, pixel / 255. Batch fixed to 1.',
    },
  ),
]
