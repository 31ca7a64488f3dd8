import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test } from 'node:test'
import type { EvalReport } from '../../client/cli/eval.js'
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
    assert.deepEqual(
      report.fusion?.parts.map((part) => part.model),
      ['faceapi-face-recognition', 'faceres'],
    )
    for (const part of report.fusion?.parts ?? []) {
      assert.ok(part.auc > 0.5, `${part.model} separates same from different pairs: AUC ${String(part.auc)}`)
    }
    assert.equal(report.fusion?.weightInUse, 0.11)
    assert.deepEqual(report.models.slice(-2), ['faceapi-face-recognition', 'faceres'])

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
