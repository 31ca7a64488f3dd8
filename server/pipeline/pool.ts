import { Worker } from 'node:worker_threads'
import { FacewireError } from '../errors.js'
import { isErrorCode } from '../../protocol/errors.js'
import type { Logger } from '../logger.js'
import type { PoolMessage, TaskMessage, WorkerError, WorkerInfo, WorkerMessage } from './protocol.js'

export interface PoolOptions {
  /** Worker entry (compiled JavaScript). */
  workerUrl: URL
  workerData: unknown
  /** Number of worker threads. */
  size: number
  /** Tasks waiting for a worker beyond the busy ones; a task past this bound is refused. */
  maxQueue: number
  /** A task running longer than this is answered ERR_PIPELINE_TIMEOUT and its worker replaced. */
  taskTimeoutMs: number
  logger: Logger
  hooks?: PoolHooks
}

export interface PoolHooks {
  onQueueDepth?: (depth: number) => void
  onBusyWorkers?: (busy: number) => void
  onTaskDone?: (outcome: 'ok' | 'error' | 'timeout' | 'crashed' | 'busy', queueMs: number) => void
}

export interface PoolStats {
  size: number
  ready: number
  busy: number
  queued: number
  replaced: number
}

export interface Pool<TOptions, TResult> {
  /** Resolves once every worker has loaded; rejects if a worker cannot initialise. */
  readonly ready: Promise<WorkerInfo>
  /**
   * Runs one task. The bytes' ArrayBuffer is transferred to the worker when the view covers it
   * whole (the caller gives it up); otherwise the view is copied once.
   */
  run(bytes: Uint8Array, options: TOptions): Promise<{ result: TResult; queueMs: number }>
  /**
   * How many tasks `run` would start at once: free workers that no queued task is waiting for
   * (0 while closing). A caller that must not queue (a stream's replaceable frame) runs only this
   * many.
   */
  capacity(): number
  /**
   * Calls `listener` each time a worker frees up with nothing queued for it (a task finished, a
   * worker loaded or was replaced), after the queue has been served. Returns the unsubscribe.
   */
  onCapacity(listener: () => void): () => void
  stats(): PoolStats
  /** Refuses queued tasks with ERR_SHUTTING_DOWN, waits for running ones, terminates workers. */
  close(): Promise<void>
}

interface Task<TOptions, TResult> {
  id: number
  bytes: ArrayBuffer
  options: TOptions
  enqueuedAt: number
  resolve: (value: { result: TResult; queueMs: number }) => void
  reject: (error: FacewireError) => void
}

type RunningTask<TOptions, TResult> = Task<TOptions, TResult> & { startedAt: number; timer: NodeJS.Timeout }

interface Slot<TOptions, TResult> {
  worker: Worker
  ready: boolean
  task: RunningTask<TOptions, TResult> | undefined
  retired: boolean
  /** Resolves once the worker has loaded (or failed to) or exited: it is safe to stop then. */
  settled: Promise<void>
  /** Resolves when the thread has exited. */
  exited: Promise<void>
}

/**
 * How long close() lets a worker finish loading, and then release its sessions and exit, before it
 * terminates the thread. Terminating a thread while ONNX Runtime works in it (loading a model,
 * finalising sessions) can abort the whole process, so workers are asked to stop first.
 */
export const WORKER_STOP_GRACE_MS = 5_000

const within = (promise: Promise<void>, ms: number): Promise<void> =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms)
    void promise.then(() => {
      clearTimeout(timer)
      resolve()
    })
  })

function toError(error: WorkerError): FacewireError {
  const code = isErrorCode(error.code) ? error.code : 'ERR_INTERNAL'
  return new FacewireError(code, error.message, error.details === undefined ? {} : { details: error.details })
}

function ownBuffer(bytes: Uint8Array): ArrayBuffer {
  if (
    bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength &&
    bytes.buffer instanceof ArrayBuffer
  ) {
    return bytes.buffer
  }
  // A view into a larger buffer (Node's Buffer pool, a uWS message): copy exactly the view.
  // Buffer#slice would return another view of the same memory, so copy by hand.
  const copy = new Uint8Array(bytes.byteLength)
  copy.set(bytes)
  return copy.buffer
}

/** A fixed-size worker_threads pool with a bounded queue, per-task timeouts and self-healing. */
export function createPool<TOptions, TResult>(options: PoolOptions): Pool<TOptions, TResult> {
  if (!Number.isInteger(options.size) || options.size < 1)
    throw new RangeError('pool size must be an integer >= 1')
  if (!Number.isInteger(options.maxQueue) || options.maxQueue < 0) {
    throw new RangeError('pool maxQueue must be an integer >= 0')
  }
  const { logger, hooks = {} } = options
  const slots: Slot<TOptions, TResult>[] = []
  const queue: Task<TOptions, TResult>[] = []
  let nextId = 1
  let closing = false
  let replaced = 0
  let readyCount = 0
  let idleWaiters: (() => void)[] = []
  const capacityListeners = new Set<() => void>()
  let resolveReady: (info: WorkerInfo) => void = () => undefined
  let rejectReady: (error: FacewireError) => void = () => undefined
  let initialised = false
  const ready = new Promise<WorkerInfo>((resolve, reject) => {
    resolveReady = resolve
    rejectReady = reject
  })
  // Avoid an unhandled rejection when nobody awaits readiness before failing.
  ready.catch(() => undefined)

  const busyCount = (): number => slots.filter((slot) => slot.task !== undefined).length
  const isFree = (slot: Slot<TOptions, TResult>): boolean =>
    slot.ready && slot.task === undefined && !slot.retired
  const capacity = (): number =>
    closing || queue.length > 0 ? 0 : slots.filter((slot) => isFree(slot)).length

  /** Tells the listeners a worker is free; one that throws is logged, never the pool's problem. */
  function announceCapacity(): void {
    if (capacity() === 0) return
    for (const listener of [...capacityListeners]) {
      try {
        listener()
      } catch (error) {
        logger.error({ err: error }, 'pipeline.capacity_listener_failed')
      }
    }
  }
  const report = (): void => {
    hooks.onQueueDepth?.(queue.length)
    hooks.onBusyWorkers?.(busyCount())
  }

  function finish(
    slot: Slot<TOptions, TResult>,
    outcome: 'ok' | 'error' | 'timeout' | 'crashed',
  ): RunningTask<TOptions, TResult> | undefined {
    const task = slot.task
    if (task === undefined) return undefined
    clearTimeout(task.timer)
    slot.task = undefined
    hooks.onTaskDone?.(outcome, task.startedAt - task.enqueuedAt)
    if (busyCount() === 0) {
      const waiters = idleWaiters
      idleWaiters = []
      for (const resolve of waiters) resolve()
    }
    return task
  }

  function dispatch(): void {
    for (const slot of slots) {
      if (queue.length === 0) break
      if (!isFree(slot)) continue
      const task = queue.shift()
      if (task === undefined) break
      const startedAt = performance.now()
      const timer = setTimeout(() => {
        const timedOut = finish(slot, 'timeout')
        timedOut?.reject(
          new FacewireError('ERR_PIPELINE_TIMEOUT', undefined, {
            details: { timeoutMs: options.taskTimeoutMs },
          }),
        )
        logger.warn({ timeoutMs: options.taskTimeoutMs }, 'pipeline.task_timeout')
        replace(slot)
      }, options.taskTimeoutMs)
      slot.task = { ...task, startedAt, timer }
      const message: TaskMessage<TOptions> = {
        type: 'task',
        id: task.id,
        bytes: task.bytes,
        options: task.options,
      }
      slot.worker.postMessage(message, [task.bytes])
    }
    report()
  }

  function spawn(): Slot<TOptions, TResult> {
    const worker = new Worker(options.workerUrl, { workerData: options.workerData })
    let settle: () => void = () => undefined
    const settled = new Promise<void>((resolve) => {
      settle = resolve
    })
    const exited = new Promise<void>((resolve) => {
      worker.once('exit', () => {
        settle()
        resolve()
      })
    })
    const slot: Slot<TOptions, TResult> = {
      worker,
      ready: false,
      task: undefined,
      retired: false,
      settled,
      exited,
    }
    worker.on('message', (message: WorkerMessage<TResult>) => {
      switch (message.type) {
        case 'ready':
          settle()
          slot.ready = true
          readyCount++
          if (!initialised && readyCount === options.size) {
            initialised = true
            resolveReady(message.info)
          }
          dispatch()
          announceCapacity()
          break
        case 'init-failed':
          settle()
          logger.error(
            { code: message.error.code, reason: message.error.message },
            'pipeline.worker_init_failed',
          )
          rejectReady(toError(message.error))
          slot.retired = true
          void worker.terminate()
          break
        case 'result': {
          const task = finish(slot, 'ok')
          task?.resolve({ result: message.result, queueMs: task.startedAt - task.enqueuedAt })
          dispatch()
          announceCapacity()
          break
        }
        case 'failed': {
          const task = finish(slot, 'error')
          task?.reject(toError(message.error))
          dispatch()
          announceCapacity()
          break
        }
      }
    })
    worker.on('error', (error) => {
      logger.error({ err: error }, 'pipeline.worker_error')
    })
    worker.on('exit', (exitCode) => {
      if (slot.ready) readyCount--
      slot.ready = false
      if (slot.retired) return
      const task = finish(slot, 'crashed')
      task?.reject(new FacewireError('ERR_PIPELINE_WORKER_CRASHED'))
      if (!initialised) {
        rejectReady(
          new FacewireError(
            'ERR_PIPELINE_WORKER_CRASHED',
            `a worker exited with code ${exitCode} while loading`,
          ),
        )
        return
      }
      logger.error({ exitCode }, 'pipeline.worker_crashed')
      replace(slot)
    })
    return slot
  }

  function replace(slot: Slot<TOptions, TResult>): void {
    if (slot.retired) return
    slot.retired = true
    if (slot.ready) readyCount--
    slot.ready = false
    void slot.worker.terminate()
    const index = slots.indexOf(slot)
    if (closing || index < 0) return
    replaced++
    slots[index] = spawn()
    report()
  }

  for (let i = 0; i < options.size; i++) slots.push(spawn())

  return {
    ready,
    run(bytes, taskOptions) {
      if (closing) return Promise.reject(new FacewireError('ERR_SHUTTING_DOWN'))
      if (!slots.some((slot) => isFree(slot)) && queue.length >= options.maxQueue) {
        hooks.onTaskDone?.('busy', 0)
        return Promise.reject(
          new FacewireError('ERR_PIPELINE_BUSY', undefined, { details: { maxQueue: options.maxQueue } }),
        )
      }
      return new Promise((resolve, reject) => {
        queue.push({
          id: nextId++,
          bytes: ownBuffer(bytes),
          options: taskOptions,
          enqueuedAt: performance.now(),
          resolve,
          reject,
        })
        dispatch()
      })
    },
    capacity,
    onCapacity(listener) {
      capacityListeners.add(listener)
      return () => {
        capacityListeners.delete(listener)
      }
    },
    stats() {
      return { size: options.size, ready: readyCount, busy: busyCount(), queued: queue.length, replaced }
    },
    async close() {
      closing = true
      for (const task of queue.splice(0)) task.reject(new FacewireError('ERR_SHUTTING_DOWN'))
      report()
      // Running tasks finish (or time out) before the workers go.
      if (busyCount() > 0) await new Promise<void>((resolve) => idleWaiters.push(resolve))
      await Promise.all(
        slots.map(async (slot) => {
          const wasReady = slot.ready
          slot.retired = true
          // A worker still loading its models is let finish; a ready one releases its sessions
          // and exits by itself. Either is bounded; then the thread is terminated if it is alive.
          await within(slot.settled, WORKER_STOP_GRACE_MS)
          if (wasReady || slot.ready) {
            slot.worker.postMessage({ type: 'close' } satisfies PoolMessage<TOptions>)
            await within(slot.exited, WORKER_STOP_GRACE_MS)
          }
          await slot.worker.terminate()
        }),
      )
    },
  }
}
