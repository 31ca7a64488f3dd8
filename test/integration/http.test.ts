import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { test } from 'node:test'
import { startTestApp } from '../helpers/app.js'
import { encode, texturedScene } from '../helpers/images.js'
import { httpRequest } from '../helpers/http.js'

test('the app on port 0 answers /health, /ready and /metrics', async (t) => {
  const { port, stop } = await startTestApp()
  t.after(() => stop())
  assert.ok(port > 0)

  const health = await httpRequest(port, '/health')
  assert.equal(health.status, 200)
  assert.equal((JSON.parse(health.body) as { status: string }).status, 'ok')

  const ready = await httpRequest(port, '/ready')
  assert.equal(ready.status, 200)
  assert.deepEqual(JSON.parse(ready.body), {
    status: 'ready',
    components: { transport: true, models: true, gallery: true },
  })

  const metrics = await httpRequest(port, '/metrics')
  assert.equal(metrics.status, 200)
  assert.match(String(metrics.headers['content-type']), /^text\/plain/)
  assert.match(metrics.body, /^# HELP facewire_/m)
  assert.match(metrics.body, /facewire_http_requests_total\{route="\/health",method="GET",status="200"\} 1/)
})

test('/ready answers 503 ERR_NOT_READY while a component is still loading', async (t) => {
  const { app, port, stop } = await startTestApp()
  t.after(() => stop())
  app.readiness.register('late-component')
  const ready = await httpRequest(port, '/ready')
  assert.equal(ready.status, 503)
  const body = JSON.parse(ready.body) as { error: { code: string }; components: Record<string, boolean> }
  assert.equal(body.error.code, 'ERR_NOT_READY')
  assert.deepEqual(body.components, { transport: true, models: true, gallery: true, 'late-component': false })
  app.readiness.markReady('late-component')
  assert.equal((await httpRequest(port, '/ready')).status, 200)
})

test('unknown routes answer 404 ERR_NOT_FOUND and wrong methods 405', async (t) => {
  const { port, stop } = await startTestApp()
  t.after(() => stop())
  const missing = await httpRequest(port, '/nope')
  assert.equal(missing.status, 404)
  assert.equal((JSON.parse(missing.body) as { error: { code: string } }).error.code, 'ERR_NOT_FOUND')
  const wrong = await httpRequest(port, '/health', { method: 'POST', body: 'x' })
  assert.equal(wrong.status, 405)
  assert.equal((JSON.parse(wrong.body) as { error: { code: string } }).error.code, 'ERR_METHOD_NOT_ALLOWED')
})

test('after shutdown the port no longer accepts connections', async () => {
  const { app, port, dataDir } = await startTestApp()
  const result = await app.shutdown(1000)
  rmSync(dataDir, { recursive: true, force: true })
  assert.equal(result.drained, true)
  await assert.rejects(httpRequest(port, '/health'), /ECONNREFUSED/)
  assert.equal(app.readiness.isReady(), false)
})

test('/metrics exports pipeline queue depth, busy workers, task outcomes and per-stage latency', async (t) => {
  const { app, port, stop } = await startTestApp()
  t.after(() => stop())
  await app.pipeline.analyze(await encode(texturedScene(64, 48), 'png'), { mode: 'all', maxFaces: 1 })
  await app.pipeline
    .analyze(new Uint8Array([1, 2, 3, 4]), { mode: 'all', maxFaces: 1 })
    .catch(() => undefined)
  const metrics = (await httpRequest(port, '/metrics')).body
  assert.match(metrics, /^facewire_pipeline_queue_depth 0$/m)
  assert.match(metrics, /^facewire_pipeline_busy_workers 0$/m)
  assert.match(metrics, /^facewire_pipeline_tasks_total\{outcome="ok"\} 1$/m)
  assert.match(metrics, /^facewire_pipeline_tasks_total\{outcome="error"\} 1$/m)
  for (const stage of ['queue', 'decode', 'detect', 'landmarks', 'align', 'embed', 'total', 'inference']) {
    assert.match(
      metrics,
      new RegExp(`^facewire_pipeline_stage_seconds_count\\{stage="${stage}"\\} [12]$`, 'm'),
      stage,
    )
  }
})
