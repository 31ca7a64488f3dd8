/**
 * The gallery's options from the configuration: the models' embedding layout and calibration
 * cohort, the HNSW parameters and the decision policies. The server and `facewire eval openset`
 * open their galleries with it.
 */
import type { Config } from '../config.js'
import type { Logger } from '../logger.js'
import { layoutFromManifest } from '../pipeline/embedding-layout.js'
import { pipelineOptionsFromConfig } from '../pipeline/index.js'
import { loadManifest } from '../pipeline/manifest.js'
import { loadCohort } from './calibration.js'
import type { GalleryOptions } from './index.js'

export async function galleryOptionsFromConfig(
  config: Config,
  logger: Logger,
  dataDir = config.dataDir,
): Promise<GalleryOptions> {
  const modelsDir = pipelineOptionsFromConfig(config).modelsDir
  const layout = layoutFromManifest(await loadManifest(modelsDir))
  return {
    dataDir,
    logger,
    layout,
    hnsw: config.hnsw,
    policy: config.match,
    orgPolicies: config.orgPolicies,
    cohort: await loadCohort(modelsDir, layout.modelId, logger),
  }
}
