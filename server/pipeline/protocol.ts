/**
 * The only contract between the pool (main thread) and its workers: typed messages. Both sides
 * import this file and nothing of each other.
 */
import type { ErrorCode } from '../../protocol/errors.js'

/** Main thread -> worker. `bytes` is transferred, never copied. */
export interface TaskMessage<TOptions> {
  type: 'task'
  id: number
  bytes: ArrayBuffer
  options: TOptions
}

/** Main thread -> worker: a task, or the request to release everything and exit. */
export type PoolMessage<TOptions> = TaskMessage<TOptions> | { type: 'close' }

/** Worker -> main thread. */
export type WorkerMessage<TResult> =
  | { type: 'ready'; info: WorkerInfo }
  | { type: 'init-failed'; error: WorkerError }
  | { type: 'result'; id: number; result: TResult }
  | { type: 'failed'; id: number; error: WorkerError }

export interface WorkerInfo {
  /** Milliseconds the worker spent loading its models. */
  loadMs: number
  /** Model ids the worker loaded, for logs and the hello message. */
  models: string[]
}

export interface WorkerError {
  code: ErrorCode
  message: string
  details?: Record<string, unknown>
}
