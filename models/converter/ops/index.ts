/** Registry of TF op -> ONNX converters. */
import type { OpHandler } from './common.js'
import { elementwiseOps } from './elementwise.js'
import { nnOps } from './nn.js'
import { shapeOps } from './shape.js'

export type { OpHandler } from './common.js'

/** Ops handled structurally by the converter itself. */
export const STRUCTURAL_OPS = ['Const', 'Placeholder', 'NoOp', 'IdentityN'] as const

export const OP_HANDLERS: Readonly<Record<string, OpHandler>> = { ...elementwiseOps, ...nnOps, ...shapeOps }

/** Every TF op name the converter understands. */
export function supportedOps(): string[] {
  return [...Object.keys(OP_HANDLERS), ...STRUCTURAL_OPS].sort()
}
