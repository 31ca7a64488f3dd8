/**
 * Converts every recipe into models/<id>.onnx and writes models/manifest.json
 * (the models plus the default `pipeline`: which model serves which stage).
 *
 *   node dist/models/converter/build.js [--only id,id] [--out dir]
 *
 * Output is deterministic: running twice yields identical files and hashes.
 * With --only, manifest entries of the other models are kept as they are.
 */
import { createHash } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import * as ort from 'onnxruntime-node'
import { convertGraphDetailed } from './convert.js'
import { facepluginPackageDir } from './faceplugin.js'
import { defaultPipeline, packageRoot, recipes } from './recipes.js'
import type { Manifest, ManifestEntry, ModelRecipe, TensorSpec } from './types.js'

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Opset of the default ONNX domain, read from a model's top-level `opset_import` fields. */
export function readOpset(bytes: Uint8Array): number {
  let pos = 0
  const varint = (): number => {
    let value = 0
    let shift = 1
    for (;;) {
      const byte = bytes[pos++]
      if (byte === undefined) throw new Error('truncated ONNX file')
      value += (byte & 0x7f) * shift
      if (byte < 0x80) return value
      shift *= 128
    }
  }
  let opset: number | undefined
  while (pos < bytes.length) {
    const key = varint()
    const field = Math.floor(key / 8)
    const wire = key % 8
    if (wire === 0) varint()
    else if (wire === 1) pos += 8
    else if (wire === 5) pos += 4
    else if (wire === 2) {
      const length = varint()
      const end = pos + length
      if (field === 8) {
        // OperatorSetIdProto { domain = 1; version = 2 }
        let domain = ''
        let version = 0
        while (pos < end) {
          const inner = varint()
          if (inner === 10) {
            const n = varint()
            domain = Buffer.from(bytes.subarray(pos, pos + n)).toString('utf8')
            pos += n
          } else if (inner === 16) version = varint()
          else throw new Error('unexpected field in opset_import')
        }
        if (domain === '' || domain === 'ai.onnx') opset = version
      }
      pos = end
    } else throw new Error(`unsupported protobuf wire type ${wire}`)
  }
  if (opset === undefined) throw new Error('ONNX file has no default-domain opset_import')
  return opset
}

/** Inputs and outputs of an ONNX file as onnxruntime sees them. */
async function readIo(bytes: Uint8Array): Promise<{ inputs: TensorSpec[]; outputs: TensorSpec[] }> {
  const session = await ort.InferenceSession.create(bytes)
  try {
    const spec = (meta: ort.InferenceSession.ValueMetadata): TensorSpec => {
      if (!meta.isTensor || meta.type !== 'float32') throw new Error(`${meta.name}: not a float32 tensor`)
      return { name: meta.name, dtype: 'float32', shape: [...meta.shape] }
    }
    return { inputs: session.inputMetadata.map(spec), outputs: session.outputMetadata.map(spec) }
  } finally {
    await session.release()
  }
}

/** Convert (or copy) one recipe; returns the manifest entry and the model bytes. */
export async function buildRecipe(recipe: ModelRecipe): Promise<{ entry: ManifestEntry; bytes: Uint8Array }> {
  const built = await recipe.build()
  const result =
    'onnx' in built
      ? { bytes: built.onnx, opset: readOpset(built.onnx), ...(await readIo(built.onnx)) }
      : convertGraphDetailed(built.graph, {
          graphName: recipe.id,
          docString: recipe.description,
          ...built.options,
        })
  const { tarball } = recipe.source
  const root = tarball === undefined ? packageRoot(recipe.source.package) : undefined
  const version =
    root === undefined
      ? (tarball?.version ?? '')
      : (JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { version: string }).version
  const dir = root ?? (await facepluginPackageDir(recipe.source.files))
  const files = await Promise.all(
    recipe.source.files.map(async (f) => ({ path: f, sha256: sha256(await readFile(path.join(dir, f))) })),
  )
  const entry: ManifestEntry = {
    id: recipe.id,
    description: recipe.description,
    file: `${recipe.id}.onnx`,
    sha256: sha256(result.bytes),
    bytes: result.bytes.length,
    opset: result.opset,
    source: {
      package: recipe.source.package,
      version,
      ...(recipe.source.origin !== undefined ? { origin: recipe.source.origin } : {}),
      ...(tarball !== undefined ? { integrity: tarball.integrity } : {}),
      files,
    },
    license: recipe.license,
    ...(recipe.provenance !== undefined ? { provenance: recipe.provenance } : {}),
    inputs: result.inputs,
    outputs: result.outputs,
    preprocessing: recipe.preprocessing,
    ...(recipe.alignment !== undefined ? { alignment: { ...recipe.alignment } } : {}),
    ...(recipe.landmarkFraming !== undefined ? { landmarkFraming: recipe.landmarkFraming } : {}),
  }
  return { entry, bytes: result.bytes }
}

async function readManifest(file: string): Promise<Manifest> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Manifest
  } catch {
    return { version: 1, pipeline: defaultPipeline, models: [] }
  }
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { only: { type: 'string' }, out: { type: 'string' } } })
  const outDir = values.out !== undefined ? path.resolve(values.out) : path.join(REPO_ROOT, 'models')
  const only = values.only?.split(',').filter((s) => s !== '')
  const selected = only === undefined ? recipes : recipes.filter((r) => only.includes(r.id))
  if (only !== undefined) {
    const missing = only.filter((id) => !recipes.some((r) => r.id === id))
    if (missing.length > 0) throw new Error(`unknown recipe id(s): ${missing.join(', ')}`)
  }
  const ids = new Set<string>()
  for (const r of recipes) {
    if (ids.has(r.id)) throw new Error(`duplicate recipe id "${r.id}"`)
    ids.add(r.id)
  }
  for (const [role, value] of Object.entries(defaultPipeline) as [string, string | { model: string }][]) {
    const id = typeof value === 'string' ? value : value.model
    if (!ids.has(id)) throw new Error(`pipeline ${role} "${id}" is not a recipe id`)
  }
  await mkdir(outDir, { recursive: true })
  const manifestFile = path.join(outDir, 'manifest.json')
  const previous: Manifest =
    only === undefined
      ? { version: 1, pipeline: defaultPipeline, models: [] }
      : await readManifest(manifestFile)
  const entries = new Map(previous.models.map((m) => [m.id, m]))
  for (const recipe of selected) {
    const t0 = performance.now()
    const { entry, bytes } = await buildRecipe(recipe)
    await writeFile(path.join(outDir, entry.file), bytes)
    entries.set(entry.id, entry)
    const ms = Math.round(performance.now() - t0)
    process.stdout.write(
      `${entry.file}  ${(entry.bytes / 1024).toFixed(0)} KiB  sha256 ${entry.sha256.slice(0, 16)}…  (${ms} ms)\n`,
    )
  }
  // manifest order follows the recipe list, then any entries not (or no longer) in it
  const order = recipes.map((r) => r.id)
  const models = [...entries.values()].sort((a, b) => {
    const ia = order.indexOf(a.id)
    const ib = order.indexOf(b.id)
    return (ia < 0 ? Infinity : ia) - (ib < 0 ? Infinity : ib) || a.id.localeCompare(b.id)
  })
  const manifest: Manifest = { version: 1, pipeline: { ...defaultPipeline }, models }
  await writeFile(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`)
  process.stdout.write(
    `wrote ${path.relative(process.cwd(), manifestFile) || manifestFile} (${models.length} models)\n`,
  )
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exitCode = 1
  })
}
