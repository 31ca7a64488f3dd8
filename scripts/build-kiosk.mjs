// Builds the kiosk page into dist/kiosk/: index.html, the content-hashed bundle and stylesheet,
// onnxruntime-web's WebAssembly runtime under ort/, the face detector under models/ (its sha256
// checked against models/manifest.json), and files.json, the list server/kiosk.ts serves from:
// { files: [{ path (under /kiosk/), type, bytes, gzipBytes, sha256, immutable }] }, immutable
// for content-addressed names. Offline: nothing is fetched.
//
//   node scripts/build-kiosk.mjs                     the default detector (224 px input)
//   KIOSK_DETECTOR=faceapi-tiny-face-detector node scripts/build-kiosk.mjs   the 416 px one
import { createHash } from 'node:crypto'
import { copyFile, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const source = join(root, 'client', 'kiosk')
const out = join(root, 'dist', 'kiosk')
const URL_PREFIX = '/kiosk/'
/** The detector the kiosk runs: the 224 px input is ~3x faster than 416 in the browser (docs/kiosk.md). */
const DEFAULT_DETECTOR = 'faceapi-tiny-face-detector-224'
/**
 * onnxruntime-web's WebAssembly runtime: the glue module and binary its wasm backend imports by
 * these names. The `jsep` pair (WebGPU/WebNN) is never loaded by that backend and is not shipped.
 */
const ORT_FILES = ['ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm']
const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex')

function fail(message) {
  console.error(`build-kiosk: ${message}`)
  process.exit(1)
}

async function detectorModel() {
  const id = process.env.KIOSK_DETECTOR || DEFAULT_DETECTOR
  const manifest = JSON.parse(await readFile(join(root, 'models', 'manifest.json'), 'utf8'))
  const entry = manifest.models.find((m) => m.id === id)
  if (entry === undefined) fail(`models/manifest.json has no model ${id}`)
  const bytes = await readFile(join(root, 'models', entry.file))
  const actual = sha256(bytes)
  if (actual !== entry.sha256)
    fail(`models/${entry.file} has sha256 ${actual}, the manifest says ${entry.sha256}`)
  const inputSize = entry.inputs[0].shape[1]
  if (!Number.isInteger(inputSize)) fail(`${id} has no fixed input size`)
  return { file: entry.file, bytes, inputSize }
}

/** Bundles one entry in memory and names it by its content: NAME.HASH.EXT. */
async function bundle(entry, name, ext) {
  const result = await build({
    entryPoints: [join(source, entry)],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: ['chrome109', 'firefox115', 'safari16.4'],
    minify: true,
    legalComments: 'none',
    // onnxruntime-web without its runtime inlined: the runtime loads from ort.env.wasm.wasmPaths.
    conditions: ['onnxruntime-web-use-extern-wasm'],
    outdir: out,
    logLevel: 'warning',
  })
  const file = result.outputFiles.find((f) => f.path.endsWith(ext))
  if (file === undefined) fail(`esbuild produced no ${ext} for ${entry}`)
  return { name: `${name}.${sha256(file.contents).slice(0, 12)}${ext}`, contents: file.contents }
}

async function listFiles(dir) {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true })
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(out, join(e.parentPath, e.name)).split(sep).join('/'))
    .sort()
}

async function main() {
  const model = await detectorModel()
  await rm(out, { recursive: true, force: true })
  await mkdir(join(out, 'ort'), { recursive: true })
  await mkdir(join(out, 'models'), { recursive: true })

  const js = await bundle('main.ts', 'kiosk', '.js')
  const css = await bundle('kiosk.css', 'kiosk', '.css')
  await writeFile(join(out, js.name), js.contents)
  await writeFile(join(out, css.name), css.contents)
  const ortDir = join(root, 'node_modules', 'onnxruntime-web', 'dist')
  for (const file of ORT_FILES) await copyFile(join(ortDir, file), join(out, 'ort', file))
  await writeFile(join(out, 'models', model.file), model.bytes)

  const html = (await readFile(join(source, 'index.html'), 'utf8'))
    .replaceAll('{{JS}}', URL_PREFIX + js.name)
    .replaceAll('{{CSS}}', URL_PREFIX + css.name)
    .replaceAll('{{DETECTOR_URL}}', `${URL_PREFIX}models/${model.file}`)
    .replaceAll('{{DETECTOR_SIZE}}', String(model.inputSize))
  if (html.includes('{{')) fail('index.html has a placeholder the build does not fill')
  await writeFile(join(out, 'index.html'), html)

  const immutable = new Set([js.name, css.name])
  const files = []
  for (const path of await listFiles(out)) {
    const bytes = await readFile(join(out, path))
    const ext = path.slice(path.lastIndexOf('.'))
    const contentType = CONTENT_TYPES[ext]
    if (contentType === undefined) fail(`no content type for ${path}`)
    files.push({
      path,
      type: contentType,
      bytes: (await stat(join(out, path))).size,
      gzipBytes: gzipSync(bytes, { level: 9 }).length,
      sha256: sha256(bytes),
      immutable: immutable.has(path),
    })
  }
  await writeFile(join(out, 'files.json'), JSON.stringify({ files }, null, 2) + '\n')
  const kib = (n) => `${(n / 1024).toFixed(1)} KiB`
  for (const f of files)
    console.log(`${f.path.padEnd(40)} ${kib(f.bytes).padStart(12)} ${kib(f.gzipBytes).padStart(12)} gzip`)
}

await main()
