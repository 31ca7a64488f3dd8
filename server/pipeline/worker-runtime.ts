import { parentPort } from 'node:worker_threads'
import { FacewireError, toFacewireError } from '../errors.js'
import type { PoolMessage, WorkerError, WorkerInfo, WorkerMessage } from './protocol.js'

export interface TaskHandler<TOptions, TResult> {
  info: WorkerInfo
  /** Returns the result and the buffers to transfer back (embeddings), never copied. */
  handle(bytes: Uint8Array, options: TOptions): Promise<{ result: TResult; transfer: ArrayBuffer[] }>
  /** Releases native resources (ONNX Runtime sessions) before the thread exits. */
  close?(): Promise<void>
}

function toWorkerError(error: unknown): WorkerError {
  const wire = toFacewireError(error)
  // Unknown errors keep their message inside the process boundary: the pool logs it, the
  // client only ever sees the catalogue message of ERR_INTERNAL.
  const message = wire.code === 'ERR_INTERNAL' && error instanceof Error ? error.message : wire.message
  return wire.details === undefined
    ? { code: wire.code, message }
    : { code: wire.code, message, details: { ...wire.details } }
}

/**
 * The worker side of the pool protocol: initialise once (load models), announce readiness, then
 * answer every task with exactly one `result` or `failed` message, in order.
 */
export function serveTasks<TOptions, TResult>(init: () => Promise<TaskHandler<TOptions, TResult>>): void {
  const port = parentPort
  if (port === null) throw new Error('serveTasks must run inside a worker thread')
  const post = (message: WorkerMessage<TResult>, transfer: ArrayBuffer[] = []): void => {
    port.postMessage(message, transfer)
  }
  init().then(
    (handler) => {
      let chain = Promise.resolve()
      port.on('message', (message: PoolMessage<TOptions>) => {
        if (message.type === 'close') {
          // After the running task: release the sessions, then let the thread end on its own
          // (nothing left to wait for once the port is closed).
          chain = chain.then(async () => {
            try {
              await handler.close?.()
            } finally {
              port.close()
            }
          })
          return
        }
        chain = chain.then(async () => {
          try {
            const { result, transfer } = await handler.handle(new Uint8Array(message.bytes), message.options)
            post({ type: 'result', id: message.id, result }, transfer)
          } catch (error) {
            post({ type: 'failed', id: message.id, error: toWorkerError(error) })
          }
        })
      })
      post({ type: 'ready', info: handler.info })
    },
    (error: unknown) => {
      const failure =
        error instanceof FacewireError
          ? toWorkerError(error)
          : toWorkerError(new FacewireError('ERR_MODEL_INVALID', String(error)))
      post({ type: 'init-failed', error: failure })
    },
  )
}
