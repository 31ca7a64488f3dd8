/**
 * `facewire eval openset`: the question a door asks. Enrolls people of an LFW-style folder into
 * a real gallery, probes it with other photos of them and with strangers who were never enrolled,
 * and reports TPIR at fixed FPIRs (from each probe's top-1 score) and what the server's default
 * policy decides.
 */
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { Config } from '../config.js'
import { galleryOptionsFromConfig } from '../gallery/from-config.js'
import { createGallery, meanTemplate } from '../gallery/index.js'
import { createLogger } from '../logger.js'
import { partCosines, type EmbeddingLayout } from '../pipeline/embedding-layout.js'
import type { Pipeline } from '../pipeline/index.js'
import { embedAll, printedHelp, REPORT_OPTIONS, startEvalPipeline } from './eval.js'
import {
  buildProtocol,
  rankOneRate,
  tpirAtFpir,
  type OpenSetProtocol,
  type OperatingPoint,
  type Person,
  type TopOne,
} from './openset.js'

const USAGE = `usage: facewire eval openset --root DIR [--enrolled N|all] [--enroll-photos K]
                                [--strangers single|rest] [--json]

Open-set identification on an LFW-style folder (<name>/<photo>): people with more than K photos
can be enrolled (N of them, spread evenly over the alphabet, from their first K photos) and are
probed with their next photo; people with one photo are the strangers (--strangers rest adds the
people who were not enrolled). Reports TPIR at FPIR 10%, 1% and 0.1%, rank-1, and the outcome of
the server's default decision policy (FACEWIRE_TARGET_FPIR and friends apply).
  --enrolled N|all     people to enroll (default 300)
  --enroll-photos K    photos per enrolled person (default 1)
  --strangers MODE     single (default) or rest
  --embeddings FILE    reuse the embeddings saved in FILE by an earlier run of the same models
                       (or save them there)
  --json               one JSON object instead of a table`

const FPIRS = [0.1, 0.01, 0.001]

export interface OpenSetReport {
  root: string
  enrolled: number
  enrollPhotos: number
  probes: number
  strangers: number
  /** Photos in which the pipeline found no face (probes: misses; strangers: never pass). */
  withoutFace: { enrollment: number; probes: number; strangers: number }
  rankOne: number
  operatingPoints: OperatingPoint[]
  /** Each model of a fused embedding alone, and the second model's weight sweep at FPIR 1%. */
  parts?: { model: string; weight: number; rankOne: number; operatingPoints: OperatingPoint[] }[]
  weightSweep?: { weight: number; tpirAt1: number; tpirAt01: number }[]
  /** The gallery's own decisions at the default policy. */
  policy: {
    targetFpir: number
    threshold: number
    margin: number
    basis: string
    cohortThreshold?: number
    galleryThreshold?: number
    probes: { match: number; wrong: number; uncertain: number; unknown: number }
    strangers: { match: number; uncertain: number; unknown: number }
  }
  models: string[]
  seconds: number
}

async function listPeople(root: string): Promise<Person[]> {
  const entries = await readdir(root, { withFileTypes: true })
  const people: Person[] = []
  for (const entry of entries) {
    if (entry.name.startsWith('.') || entry.name.startsWith('_')) continue
    // Folders, and links to folders (an evaluation set assembled from links).
    if (
      !entry.isDirectory() &&
      !(entry.isSymbolicLink() && (await stat(join(root, entry.name))).isDirectory())
    )
      continue
    const photos = (await readdir(join(root, entry.name))).filter((f) => /\.(jpe?g|png|webp)$/i.test(f))
    if (photos.length > 0) people.push({ name: entry.name, photos: photos.sort() })
  }
  return people
}

/** Embeddings saved as JSON: model id, then base64 float32 per key (null: no face). */
async function loadSaved(file: string, modelId: string): Promise<Map<string, Float32Array | undefined>> {
  try {
    const saved = JSON.parse(await readFile(file, 'utf8')) as {
      modelId: string
      embeddings: Record<string, string | null>
    }
    if (saved.modelId !== modelId) return new Map()
    return new Map(
      Object.entries(saved.embeddings).map(([key, value]) => {
        if (value === null) return [key, undefined]
        const bytes = Buffer.from(value, 'base64')
        return [key, new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4).slice()]
      }),
    )
  } catch {
    return new Map()
  }
}

async function save(
  file: string,
  modelId: string,
  map: Map<string, Float32Array | undefined>,
): Promise<void> {
  const embeddings: Record<string, string | null> = {}
  for (const [key, value] of map) {
    embeddings[key] =
      value === undefined
        ? null
        : Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64')
  }
  await writeFile(file, JSON.stringify({ modelId, embeddings }))
}

/** Per-part cosines of each query against each enrolled template, and the top-1 under weights. */
function topOnes(
  queries: { truth?: string; embedding: Float32Array | undefined }[],
  templates: { name: string; template: Float32Array }[],
  layout: EmbeddingLayout,
): (weights: readonly number[]) => TopOne[] {
  const cosines = queries.map((q) =>
    q.embedding === undefined
      ? undefined
      : templates.map((t) => partCosines(q.embedding as Float32Array, t.template, layout)),
  )
  return (weights) =>
    queries.map((q, qi) => {
      const rows = cosines[qi]
      const base: TopOne = q.truth === undefined ? {} : { truth: q.truth }
      if (rows === undefined) return base
      let best: { name: string; score: number } | undefined
      rows.forEach((c, ti) => {
        let score = 0
        c.forEach((value, k) => (score += (weights[k] ?? 0) * value))
        if (best === undefined || score > best.score) best = { name: templates[ti]?.name ?? '', score }
      })
      return best === undefined ? base : { ...base, best }
    })
}

export async function evaluateOpenSet(
  pipeline: Pipeline,
  config: Config,
  layout: EmbeddingLayout,
  options: {
    root: string
    protocol: OpenSetProtocol
    concurrency: number
    embeddingsFile?: string
  },
): Promise<OpenSetReport> {
  const started = performance.now()
  const { protocol, root } = options
  const keys = [
    ...protocol.enrolled.flatMap((p) => p.photos.map((photo) => `${p.name}/${photo}`)),
    ...protocol.probes.map((p) => `${p.name}/${p.photo}`),
    ...protocol.strangers.map((p) => `${p.name}/${p.photo}`),
  ]
  const info = await pipeline.ready
  const saved =
    options.embeddingsFile === undefined
      ? new Map<string, Float32Array | undefined>()
      : await loadSaved(options.embeddingsFile, layout.modelId)
  const missing = keys.filter((key) => !saved.has(key))
  const fresh = await embedAll(pipeline, root, missing, options.concurrency)
  const embeddings = new Map<string, Float32Array | undefined>([...saved, ...fresh])
  if (options.embeddingsFile !== undefined && fresh.size > 0)
    await save(options.embeddingsFile, layout.modelId, embeddings)

  const enrolled = protocol.enrolled.map((p) => ({
    name: p.name,
    embeddings: p.photos
      .map((photo) => embeddings.get(`${p.name}/${photo}`))
      .filter((e): e is Float32Array => e !== undefined),
  }))
  const templates = enrolled
    .filter((p) => p.embeddings.length > 0)
    .map((p) => ({ name: p.name, template: meanTemplate(p.embeddings, layout) }))
  const probeQueries = protocol.probes.map((p) => ({
    truth: p.name,
    embedding: embeddings.get(`${p.name}/${p.photo}`),
  }))
  const strangerQueries = protocol.strangers.map((p) => ({
    embedding: embeddings.get(`${p.name}/${p.photo}`),
  }))
  const probeTop = topOnes(probeQueries, templates, layout)
  const strangerTop = topOnes(strangerQueries, templates, layout)
  const weights = layout.parts.map((p) => p.weight)
  const probes = probeTop(weights)
  const strangers = strangerTop(weights)

  const report: OpenSetReport = {
    root,
    enrolled: protocol.enrolled.length,
    enrollPhotos: protocol.enrolled[0]?.photos.length ?? 0,
    probes: probes.length,
    strangers: strangers.length,
    withoutFace: {
      enrollment: enrolled.reduce(
        (n, p, i) => n + (protocol.enrolled[i]?.photos.length ?? 0) - p.embeddings.length,
        0,
      ),
      probes: probeQueries.filter((q) => q.embedding === undefined).length,
      strangers: strangerQueries.filter((q) => q.embedding === undefined).length,
    },
    rankOne: rankOneRate(probes),
    operatingPoints: FPIRS.map((f) => tpirAtFpir(probes, strangers, f)),
    policy: await policyOutcome(config, layout, protocol, embeddings),
    models: info.models,
    seconds: 0,
  }
  if (layout.parts.length > 1) {
    report.parts = layout.parts.map((part, k) => {
      const alone = layout.parts.map((_, j) => (j === k ? 1 : 0))
      const p = probeTop(alone)
      const s = strangerTop(alone)
      return {
        model: part.model,
        weight: part.weight,
        rankOne: rankOneRate(p),
        operatingPoints: FPIRS.map((f) => tpirAtFpir(p, s, f)),
      }
    })
    if (layout.parts.length === 2) {
      report.weightSweep = []
      for (let step = 0; step <= 20; step++) {
        const w = step / 20
        const p = probeTop([1 - w, w])
        const s = strangerTop([1 - w, w])
        report.weightSweep.push({
          weight: w,
          tpirAt1: tpirAtFpir(p, s, 0.01).tpir,
          tpirAt01: tpirAtFpir(p, s, 0.001).tpir,
        })
      }
    }
  }
  report.seconds = (performance.now() - started) / 1000
  return report
}

/** Enrolls the protocol into a real gallery in a temporary folder and tallies its decisions. */
async function policyOutcome(
  config: Config,
  layout: EmbeddingLayout,
  protocol: OpenSetProtocol,
  embeddings: Map<string, Float32Array | undefined>,
): Promise<OpenSetReport['policy']> {
  const dir = await mkdtemp(join(tmpdir(), 'facewire-openset-'))
  const gallery = createGallery({
    ...(await galleryOptionsFromConfig(config, createLogger({ level: 'silent' }), dir)),
    layout,
  })
  const org = 'openset'
  const actor = { sub: 'eval' }
  try {
    for (const person of protocol.enrolled) {
      const faces = person.photos
        .map((photo) => embeddings.get(`${person.name}/${photo}`))
        .filter((e): e is Float32Array => e !== undefined)
      if (faces.length === 0) continue
      const identity = await gallery.createIdentity(org, { name: person.name }, actor)
      for (const embedding of faces) await gallery.addFace(org, identity.id, { embedding, quality: 1 }, actor)
    }
    // The server refits after enrollment bursts in the background; here, before any probe.
    gallery.calibrate(org)
    const probes = { match: 0, wrong: 0, uncertain: 0, unknown: 0 }
    for (const probe of protocol.probes) {
      const embedding = embeddings.get(`${probe.name}/${probe.photo}`)
      if (embedding === undefined) {
        probes.unknown++
        continue
      }
      const { decision } = gallery.recognize(org, embedding)
      if (decision.status === 'match') {
        if (decision.identity?.name === probe.name) probes.match++
        else probes.wrong++
      } else probes[decision.status]++
    }
    const strangers = { match: 0, uncertain: 0, unknown: 0 }
    for (const stranger of protocol.strangers) {
      const embedding = embeddings.get(`${stranger.name}/${stranger.photo}`)
      if (embedding === undefined) {
        strangers.unknown++
        continue
      }
      strangers[gallery.recognize(org, embedding).decision.status]++
    }
    const policy = gallery.policyFor(org)
    return {
      targetFpir: policy.targetFpir,
      threshold: policy.threshold,
      margin: policy.margin,
      basis: policy.basis,
      ...(policy.cohortThreshold === undefined ? {} : { cohortThreshold: policy.cohortThreshold }),
      ...(policy.galleryThreshold === undefined ? {} : { galleryThreshold: policy.galleryThreshold }),
      probes,
      strangers,
    }
  } finally {
    await gallery.close()
    await rm(dir, { recursive: true, force: true })
  }
}

function formatReport(report: OpenSetReport): string {
  const pct = (value: number): string => `${(value * 100).toFixed(2)}%`
  const point = (p: OperatingPoint): string =>
    `${pct(p.tpir)} at ${p.threshold.toFixed(4)}${p.measurable ? '' : ' (too few strangers to measure)'}`
  const rows: [string, string][] = [
    ['enrolled', `${report.enrolled} people from ${report.enrollPhotos} photo(s) each (${report.root})`],
    ['probes / strangers', `${report.probes} / ${report.strangers}`],
    [
      'photos without a face',
      `enrollment ${report.withoutFace.enrollment}, probes ${report.withoutFace.probes}, strangers ${report.withoutFace.strangers}`,
    ],
    ['rank-1', pct(report.rankOne)],
    ...report.operatingPoints.map((p): [string, string] => [`TPIR @ FPIR ${String(p.fpir)}`, point(p)]),
    ...(report.parts ?? []).flatMap((part): [string, string][] =>
      part.operatingPoints.map((p) => [`${part.model} alone: TPIR @ FPIR ${String(p.fpir)}`, point(p)]),
    ),
    ...(report.weightSweep === undefined
      ? []
      : [
          [
            'weight of the second model: TPIR @ FPIR 0.01 / 0.001',
            report.weightSweep
              .map((s) => `${s.weight.toFixed(2)}: ${pct(s.tpirAt1)}/${pct(s.tpirAt01)}`)
              .join(', '),
          ] as [string, string],
        ]),
    [
      'default policy',
      `target FPIR ${String(report.policy.targetFpir)}: threshold ${report.policy.threshold.toFixed(4)} (${report.policy.basis}; cohort ${report.policy.cohortThreshold?.toFixed(4) ?? '-'}, gallery ${report.policy.galleryThreshold?.toFixed(4) ?? '-'}), margin ${String(report.policy.margin)}`,
    ],
    [
      'policy: enrolled probes',
      `match ${report.policy.probes.match} (${pct(report.policy.probes.match / Math.max(1, report.probes))}), wrong person ${report.policy.probes.wrong}, uncertain ${report.policy.probes.uncertain}, unknown ${report.policy.probes.unknown}`,
    ],
    [
      'policy: strangers',
      `match ${report.policy.strangers.match} (${pct(report.policy.strangers.match / Math.max(1, report.strangers))}), uncertain ${report.policy.strangers.uncertain}, unknown ${report.policy.strangers.unknown}`,
    ],
    ['models', report.models.join(', ')],
    ['time', `${report.seconds.toFixed(1)} s`],
  ]
  const width = Math.max(...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')
}

export async function runEvalOpenSet(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      root: { type: 'string' },
      enrolled: { type: 'string', default: '300' },
      'enroll-photos': { type: 'string', default: '1' },
      strangers: { type: 'string', default: 'single' },
      embeddings: { type: 'string' },
      ...REPORT_OPTIONS,
    },
  })
  if (printedHelp(values.help, USAGE)) return 0
  const enrolledCount = values.enrolled === 'all' ? 'all' : Number(values.enrolled)
  const enrollPhotos = Number(values['enroll-photos'])
  if (
    values.root === undefined ||
    (enrolledCount !== 'all' && !(Number.isSafeInteger(enrolledCount) && enrolledCount > 0)) ||
    !(Number.isSafeInteger(enrollPhotos) && enrollPhotos > 0) ||
    (values.strangers !== 'single' && values.strangers !== 'rest')
  ) {
    process.stderr.write(USAGE + '\n')
    return 2
  }
  const protocol = buildProtocol(await listPeople(values.root), {
    enrolled: enrolledCount,
    enrollPhotos,
    strangers: values.strangers,
  })
  const { config, layout, pipeline } = await startEvalPipeline()
  try {
    const report = await evaluateOpenSet(pipeline, config, layout, {
      root: values.root,
      protocol,
      concurrency: config.workers * 2,
      ...(values.embeddings === undefined ? {} : { embeddingsFile: values.embeddings }),
    })
    process.stdout.write((values.json ? JSON.stringify(report) : formatReport(report)) + '\n')
    return 0
  } finally {
    await pipeline.close()
  }
}
