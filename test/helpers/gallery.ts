/** Small galleries for unit tests: seeded unit vectors and the options of a 16-d gallery. */
import type { GalleryOptions } from '../../server/gallery/index.js'
import { singleLayout } from '../../server/pipeline/embedding-layout.js'
import { createMemoryLogger } from './app.js'
import { seededRandom } from './random.js'

/** A deterministic unit vector of `dim` values. */
export function unitVector(seed: number, dim = 16): Float32Array {
  const random = seededRandom(seed)
  const v = Float32Array.from({ length: dim }, () => random() - 0.5)
  const norm = Math.hypot(...v)
  return v.map((x) => x / norm)
}

/** A 16-d single-model gallery (model-a) in `dataDir`, small HNSW parameters, a fixed 0.9 threshold. */
export function testGalleryOptions(dataDir: string, overrides: Partial<GalleryOptions> = {}): GalleryOptions {
  return {
    dataDir,
    logger: createMemoryLogger().logger,
    layout: singleLayout(16, 'model-a'),
    hnsw: { M: 8, efConstruction: 50, ef: 32 },
    policy: { targetFpir: 0.01, threshold: 0.9, margin: 0.02, topK: 3 },
    ...overrides,
  }
}
