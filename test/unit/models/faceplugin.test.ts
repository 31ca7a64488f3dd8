import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import * as ort from 'onnxruntime-node'
import { readOpset } from '../../../models/converter/build.js'
import { FACEPLUGIN_INTEGRITY, facepluginRecipes } from '../../../models/converter/faceplugin.js'
import { DEFAULT_MODELS_DIR } from '../../../server/pipeline/index.js'
import { loadManifest, readVerifiedModel } from '../../../server/pipeline/manifest.js'

test('the faceplugin models are the package files byte for byte, with their provenance and tarball integrity', async () => {
  const manifest = await loadManifest(DEFAULT_MODELS_DIR)
  for (const recipe of facepluginRecipes) {
    const entry = manifest.models.find((m) => m.id === recipe.id) as unknown as Record<string, unknown> & {
      sha256: string
      source: { integrity?: string; files: { path: string; sha256: string }[] }
    }
    assert.ok(entry !== undefined, recipe.id)
    assert.equal(entry.source.files.length, 1)
    assert.equal(entry.sha256, entry.source.files[0]?.sha256, `${recipe.id}: copied, not converted`)
    assert.equal(entry.source.integrity, FACEPLUGIN_INTEGRITY)
    assert.match(String(entry['provenance']), /gitguanqi/)
    assert.match(String(entry['provenance']), /licen[cs]e as unclear/)
  }
})

test('inputs, outputs and opset in the manifest are what the files declare', async () => {
  const manifest = await loadManifest(DEFAULT_MODELS_DIR)
  for (const recipe of facepluginRecipes) {
    const entry = manifest.models.find((m) => m.id === recipe.id)
    assert.ok(entry !== undefined)
    const bytes = await readVerifiedModel(DEFAULT_MODELS_DIR, entry)
    assert.equal(readOpset(bytes), (entry as unknown as { opset: number }).opset)
    const session = await ort.InferenceSession.create(bytes)
    assert.deepEqual(
      session.inputMetadata.map((m) => ({ name: m.name, shape: m.isTensor ? [...m.shape] : [] })),
      entry.inputs.map((i) => ({ name: i.name, shape: i.shape })),
    )
    assert.deepEqual(
      session.outputMetadata.map((m) => m.name),
      entry.outputs.map((o) => o.name),
    )
    await session.release()
  }
})

test('the opset reader finds the default domain among several opset imports and refuses a truncated file', () => {
  // ModelProto { opset_import (8): [{domain "ai.onnx.ml", version 3}, {version 13}] } by hand.
  const ml = Buffer.from('ai.onnx.ml')
  const bytes = Uint8Array.from([0x42, 2 + ml.length + 2, 0x0a, ml.length, ...ml, 0x10, 3, 0x42, 2, 0x10, 13])
  assert.equal(readOpset(bytes), 13)
  assert.throws(() => readOpset(bytes.subarray(0, 5)))
  const feature = readFileSync(join(DEFAULT_MODELS_DIR, 'faceplugin-feature.onnx'))
  assert.equal(readOpset(feature), 9)
})
