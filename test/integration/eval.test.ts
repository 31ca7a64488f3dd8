import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test } from 'node:test'
import type { OpenSetReport } from '../../server/cli/eval-openset.js'
import type { EvalReport } from '../../server/cli/eval.js'
import { runCli } from '../helpers/child.js'
import { encode, facesDir, texturedScene } from '../helpers/images.js'

const faces = facesDir()
const noFaces = faces === undefined ? 'the shared face photos (../shared/faces) are absent' : false

/** Lines of a View 1 pairs file: its same-person lines, then its different-person lines. */
function view1Lines(file: string): { same: string[]; different: string[] } {
  const lines = readFileSync(file, 'utf8').trim().split('\n')
  const n = Number(lines[0])
  return { same: lines.slice(1, 1 + n), different: lines.slice(1 + n, 1 + 2 * n) }
}

/**
 * A small LFW-shaped folder: links to the people the chosen pairs need, plus `Nobody_Here/1.jpg`,
 * a textured scene without a face, made here.
 */
async function smallRoot(lfw: string, lines: string[]): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'facewire-eval-'))
  const people = new Set(
    lines.flatMap((line) => line.split('\t').filter((_, i, all) => i === 0 || (all.length === 4 && i === 2))),
  )
  people.delete('Nobody_Here')
  for (const person of people) symlinkSync(resolve(lfw, person), join(root, person))
  mkdirSync(join(root, 'Nobody_Here'))
  writeFileSync(join(root, 'Nobody_Here', '1.jpg'), await encode(texturedScene(250, 250, 7), 'jpeg'))
  return root
}

/** A models folder whose manifest fuses dlib's ResNet (weight 0.3) with the default embedder. */
function fusedModelsDir(root: string): string {
  const source = resolve('models')
  const dir = join(root, 'fused-models')
  mkdirSync(dir)
  const manifest = JSON.parse(readFileSync(join(source, 'manifest.json'), 'utf8')) as {
    pipeline: Record<string, unknown>
    models: { file: string }[]
  }
  for (const model of manifest.models) symlinkSync(join(source, model.file), join(dir, model.file))
  manifest.pipeline['secondaryEmbedder'] = { model: 'faceapi-face-recognition', weight: 0.3 }
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest))
  return dir
}

test(
  'facewire eval lfw: threshold from the train pairs, a missing face counts as a wrong pair, each fused model reported',
  { skip: noFaces },
  async (t) => {
    const lfw = join(faces ?? '', 'lfw-view1')
    const train = view1Lines(join(lfw, 'pairsDevTrain.txt'))
    const test = view1Lines(join(lfw, 'pairsDevTest.txt'))
    const trainLines = { same: train.same.slice(0, 6), different: train.different.slice(0, 6) }
    // The test pairs: five of each, one same-person pair with the faceless image in it.
    const testLines = {
      same: [...test.same.slice(0, 4), 'Nobody_Here\t1\t1'],
      different: test.different.slice(0, 5),
    }
    const all = [...trainLines.same, ...trainLines.different, ...testLines.same, ...testLines.different]
    const root = await smallRoot(lfw, all)
    t.after(() => {
      rmSync(root, { recursive: true, force: true })
    })
    const write = (name: string, lines: { same: string[]; different: string[] }): string => {
      const file = join(root, name)
      writeFileSync(file, [String(lines.same.length), ...lines.same, ...lines.different].join('\n') + '\n')
      return file
    }
    const trainFile = write('train.txt', trainLines)
    const testFile = write('test.txt', testLines)

    const run = await runCli(
      ['eval', 'lfw', '--root', root, '--pairs', testFile, '--train', trainFile, '--json'],
      { FACEWIRE_WORKERS: '1', LOG_LEVEL: 'warn' },
    )
    assert.equal(run.code, 0, run.stderr)
    const report = JSON.parse(run.stdout) as EvalReport
    assert.equal(report.format, 'view1')
    assert.equal(report.pairs, 10)
    assert.equal(report.thresholdFrom, 'train')
    assert.equal(report.imagesWithoutFace, 1, 'the textured scene has no face')
    assert.equal(report.pairsWithoutFace, 1)
    // The faceless same-person pair is wrong whatever the threshold; these easy pairs are otherwise right.
    assert.ok(report.accuracy <= 0.9, `accuracy ${String(report.accuracy)}`)
    assert.ok(report.accuracy >= 0.8, `accuracy ${String(report.accuracy)}`)
    assert.ok(report.threshold > 0 && report.threshold < 1)
    assert.ok(report.trainAccuracy !== undefined && report.trainAccuracy >= 0.9)
    assert.equal(report.fusion, undefined, 'the default models embed with one model')
    assert.ok(report.models.includes('faceplugin-feature'))

    // A manifest fusing dlib's ResNet in: each model is reported alone, and the weight sweep.
    const fusedModels = fusedModelsDir(root)
    const fused = await runCli(
      ['eval', 'lfw', '--root', root, '--pairs', testFile, '--train', trainFile, '--json'],
      { FACEWIRE_WORKERS: '1', LOG_LEVEL: 'warn', FACEWIRE_MODELS_DIR: fusedModels },
    )
    assert.equal(fused.code, 0, fused.stderr)
    const fusedReport = JSON.parse(fused.stdout) as EvalReport
    assert.deepEqual(
      fusedReport.fusion?.parts.map((part) => part.model),
      ['faceplugin-feature', 'faceapi-face-recognition'],
    )
    for (const part of fusedReport.fusion?.parts ?? []) {
      assert.ok(part.auc > 0.5, `${part.model} separates same from different pairs: AUC ${String(part.auc)}`)
    }
    assert.equal(fusedReport.fusion?.weightInUse, 0.3)

    // The View 2 layout ("folds<TAB>n"): 10-fold accuracy, no train file.
    const folds = Array.from({ length: 2 }, (_, fold) => [
      ...train.same.slice(fold * 3, fold * 3 + 3),
      ...train.different.slice(fold * 3, fold * 3 + 3),
    ])
    const view2 = join(root, 'view2.txt')
    writeFileSync(view2, ['2\t3', ...folds.flat()].join('\n') + '\n')
    const cv = await runCli(['eval', 'lfw', '--root', root, '--pairs', view2, '--json'], {
      FACEWIRE_WORKERS: '1',
      LOG_LEVEL: 'warn',
    })
    assert.equal(cv.code, 0, cv.stderr)
    const cvReport = JSON.parse(cv.stdout) as EvalReport
    assert.equal(cvReport.format, 'view2')
    assert.equal(cvReport.pairs, 12)
    assert.equal(cvReport.thresholdFrom, '10-fold')
    assert.ok(cvReport.accuracyStd !== undefined)

    const usage = await runCli(['eval', 'lfw', '--root', root])
    assert.equal(usage.code, 2)
    assert.match(usage.stderr, /--pairs FILE/)
  },
)

test(
  'facewire eval openset: enrolled people are probed with another photo, strangers are never enrolled, the policy is tallied',
  { skip: noFaces },
  async (t) => {
    const lfw = join(faces ?? '', 'lfw-view1')
    const root = mkdtempSync(join(tmpdir(), 'facewire-openset-'))
    t.after(() => {
      rmSync(root, { recursive: true, force: true })
    })
    // Eight people with two or more photos, six with one, and a faceless "person".
    for (const person of [
      'Aaron_Peirsol',
      'Abdullah_Gul',
      'Aaron_Sorkin',
      'Al_Gore',
      'Alvaro_Uribe',
      'Amelie_Mauresmo',
      'Andre_Agassi',
      'Angelina_Jolie',
      'AJ_Cook',
      'AJ_Lamas',
      'Aaron_Guiel',
      'Aaron_Tippin',
      'Abdoulaye_Wade',
      'Abdul_Rahman',
    ]) {
      symlinkSync(resolve(lfw, person), join(root, person))
    }
    mkdirSync(join(root, 'Nobody_Here'))
    writeFileSync(join(root, 'Nobody_Here', '1.jpg'), await encode(texturedScene(250, 250, 7), 'jpeg'))

    const saved = join(root, 'embeddings.json')
    const openset = ['eval', 'openset', '--root', root, '--enrolled', '4', '--embeddings', saved, '--json']
    const run = await runCli(openset, { FACEWIRE_WORKERS: '1', LOG_LEVEL: 'warn' })
    assert.equal(run.code, 0, run.stderr)
    const report = JSON.parse(run.stdout) as OpenSetReport
    // A second run reads the saved embeddings instead of embedding again (nothing new to save),
    // and agrees.
    const savedAt = statSync(saved).mtimeMs
    const again = await runCli(openset, { FACEWIRE_WORKERS: '1', LOG_LEVEL: 'warn' })
    assert.equal(again.code, 0, again.stderr)
    const untimed = (r: OpenSetReport): OpenSetReport => ({ ...r, seconds: 0 })
    assert.deepEqual(untimed(JSON.parse(again.stdout) as OpenSetReport), untimed(report))
    assert.equal(statSync(saved).mtimeMs, savedAt, 'nothing was embedded again')
    const savedKeys = Object.keys(
      (JSON.parse(readFileSync(saved, 'utf8')) as { embeddings: object }).embeddings,
    )
    assert.equal(savedKeys.length, 4 + 4 + 7, 'every enrollment, probe and stranger photo, faceless included')
    assert.equal(report.enrolled, 4)
    assert.equal(report.probes, 4)
    assert.equal(report.strangers, 7, 'the six one-photo people and the faceless image')
    assert.equal(report.withoutFace.strangers, 1)
    assert.equal(report.rankOne, 1, 'four clear LFW faces are each found as themselves')
    const probes = report.policy.probes
    assert.equal(probes.match + probes.wrong + probes.uncertain + probes.unknown, 4)
    const strangers = report.policy.strangers
    assert.equal(strangers.match + strangers.uncertain + strangers.unknown, 7)
    assert.equal(report.policy.basis, 'cohort', 'four identities are too few to calibrate on')
    assert.ok(report.policy.threshold > 0.3 && report.policy.threshold < 0.9)
    assert.deepEqual(
      report.operatingPoints.map((p) => [p.fpir, p.measurable]),
      [
        [0.1, false],
        [0.01, false],
        [0.001, false],
      ],
      'seven strangers cannot resolve FPIR 10% or less',
    )

    const cohortFile = join(root, 'cohort.json')
    const pairs = join(root, 'pairs.txt')
    writeFileSync(pairs, '1\nAaron_Peirsol\t1\t2\nAbdullah_Gul\t13\tAl_Gore\t1\n')
    const cohort = await runCli(['eval', 'cohort', '--root', root, '--pairs', pairs, '--out', cohortFile], {
      FACEWIRE_WORKERS: '1',
      LOG_LEVEL: 'warn',
    })
    assert.notEqual(cohort.code, 0, 'four images give too few impostor pairs to fit a tail')
  },
)
