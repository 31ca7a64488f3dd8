/**
 * TFJS graph (see {@link TfjsGraph}) -> ONNX model conversion.
 *
 * - Every node's op must be known; unknown ops fail with the op and node name.
 * - Only nodes reachable from the outputs are emitted (dead ONNX nodes are pruned).
 * - Conv/pool run in NCHW; the NCHW layout is propagated through layout-agnostic ops
 *   and converted back to NHWC only where TF semantics need it (see context.ts).
 * - Constant subgraphs (incl. shape arithmetic on static dims) are folded.
 */
import { encodeModel, type OnnxDim, type OnnxValueInfo } from './onnx-proto.js'
import { ConversionError, Ctx, onnxType, type Value } from './context.js'
import { constValue } from './ops/common.js'
import { OP_HANDLERS, STRUCTURAL_OPS } from './ops/index.js'
import type { ConstData } from './tensor-util.js'
import { nodeNameOf } from './tfjs-graph.js'
import type { ConvertOptions, ConvertResult, IODtype, TensorSpec, TfjsGraph, TfNode } from './types.js'

export { ConversionError } from './context.js'

export const DEFAULT_OPSET = 18
const PRODUCER = 'facewire-tfjs2onnx'
const PRODUCER_VERSION = '1.0.0'

function irVersionFor(opset: number): number {
  if (opset <= 18) return 8
  if (opset <= 20) return 9
  return 10
}

/** Canonical value key of a tensor reference: "name" for output 0, "name:k" otherwise. */
function refKey(ref: string): string {
  const r = ref.startsWith('^') ? ref.slice(1) : ref
  return r.endsWith(':0') ? r.slice(0, -2) : r
}

/** Check that every op is supported; throws listing each unsupported op with its node. */
export function checkOps(graph: TfjsGraph): void {
  const known = new Set<string>([...Object.keys(OP_HANDLERS), ...STRUCTURAL_OPS])
  const bad = graph.nodes.filter((n) => !known.has(n.op))
  if (bad.length > 0) {
    const list = bad.slice(0, 10).map((n) => `op "${n.op}" at node "${n.name}"`)
    throw new ConversionError(
      `unsupported TF op${bad.length > 1 ? 's' : ''}: ${list.join('; ')}${bad.length > 10 ? ` (+${bad.length - 10} more)` : ''}`,
    )
  }
}

function topoOrder(graph: TfjsGraph, outputs: readonly string[]): TfNode[] {
  const byName = new Map(graph.nodes.map((n) => [n.name, n]))
  const state = new Map<string, 1 | 2>()
  const order: TfNode[] = []
  for (const out of outputs) {
    const rootName = nodeNameOf(out)
    if (!byName.has(rootName)) throw new ConversionError(`output "${out}" does not name a node`)
    const stack: { node: TfNode; i: number }[] = []
    const push = (name: string): void => {
      const st = state.get(name)
      if (st === 2) return
      if (st === 1) throw new ConversionError(`graph has a cycle through node "${name}"`)
      const node = byName.get(name)
      if (node === undefined) throw new ConversionError(`input "${name}" does not name a node`)
      state.set(name, 1)
      stack.push({ node, i: 0 })
    }
    push(rootName)
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as { node: TfNode; i: number }
      if (top.i < top.node.inputs.length) {
        const ref = top.node.inputs[top.i++] as string
        if (!ref.startsWith('^')) push(nodeNameOf(ref))
      } else {
        stack.pop()
        state.set(top.node.name, 2)
        order.push(top.node)
      }
    }
  }
  return order
}

function defaultOutputs(graph: TfjsGraph): string[] {
  if (graph.outputs.length > 0) return graph.outputs.map((o) => o.name)
  const consumed = new Set(graph.nodes.flatMap((n) => n.inputs.map(nodeNameOf)))
  return graph.nodes
    .filter((n) => !consumed.has(n.name) && n.op !== 'Const' && n.op !== 'NoOp')
    .map((n) => n.name)
}

function toDims(shape: number[] | undefined, dynamicBatch: boolean): OnnxDim[] | undefined {
  if (shape === undefined) return undefined
  return shape.map((d, i) => (d >= 0 ? d : i === 0 && dynamicBatch ? 'N' : null))
}

function specOf(v: OnnxValueInfo, dtype: IODtype): TensorSpec {
  return { name: v.name, dtype, shape: (v.shape ?? []).map((d) => (d === null ? '?' : d)) }
}

/** Convert and return bytes plus IO description and op histogram. */
export function convertGraphDetailed(graph: TfjsGraph, options: ConvertOptions = {}): ConvertResult {
  const opset = options.opset ?? DEFAULT_OPSET
  if (opset < 18 || opset > 21) throw new ConversionError(`opset ${opset} is not supported (18..21)`)
  checkOps(graph)
  const ctx: Ctx = new Ctx(opset, options.compactFloat16 ?? true, options.keepQuantized ?? true)
  const dynamicBatch = (options.batch ?? 'dynamic') === 'dynamic'

  // inputs
  const requested: { tensor: string; name?: string; shape?: number[] }[] =
    options.inputs ?? graph.inputs.map((i) => ({ tensor: i.name }))
  const inputSpecs: { tensor: string; name: string; shape: number[] | undefined; dtype: IODtype }[] =
    requested.map((spec) => {
      const io = graph.inputs.find((i) => nodeNameOf(i.name) === nodeNameOf(spec.tensor))
      const node = graph.nodes.find((n) => n.name === nodeNameOf(spec.tensor))
      if (node === undefined) throw new ConversionError(`input "${spec.tensor}" does not name a node`)
      const shape = spec.shape !== undefined ? [...spec.shape] : io?.shape ? [...io.shape] : undefined
      if (shape !== undefined && typeof options.batch === 'number' && shape[0] === -1)
        shape[0] = options.batch
      const dtype: IODtype = io?.dtype ?? 'float32'
      return { tensor: node.name, name: spec.name ?? node.name, shape, dtype }
    })
  if (inputSpecs.length === 0) {
    for (const n of graph.nodes.filter((p) => p.op === 'Placeholder'))
      inputSpecs.push({ tensor: n.name, name: n.name, shape: undefined, dtype: 'float32' })
  }
  const requestedOutputs: { tensor: string; name?: string }[] =
    options.outputs ?? defaultOutputs(graph).map((t) => ({ tensor: t }))
  const outputSpecs = requestedOutputs.map((o) => ({
    tensor: o.tensor,
    name: o.name ?? refKey(o.tensor),
  }))
  for (const i of inputSpecs) ctx.reserve(i.name)
  for (const o of outputSpecs) ctx.reserve(o.name)

  const graphInputs: OnnxValueInfo[] = []
  for (const i of inputSpecs) {
    const v: Value = { names: { same: i.name }, dtype: i.dtype, shape: i.shape }
    ctx.setValue(i.tensor, v)
    const info: OnnxValueInfo = { name: i.name, elemType: onnxType(i.dtype) }
    const dims = toDims(i.shape, dynamicBatch)
    if (dims !== undefined) info.shape = dims
    graphInputs.push(info)
  }
  const inputNames = new Set(inputSpecs.map((i) => i.tensor))

  for (const node of topoOrder(
    graph,
    outputSpecs.map((o) => o.tensor),
  )) {
    ctx.current = node
    if (inputNames.has(node.name)) continue
    switch (node.op) {
      case 'Const': {
        const c = graph.constants.get(node.name)
        if (c === undefined) ctx.fail('Const node without a value in graph.constants')
        const data: ConstData = { dtype: c.dtype, shape: [...c.shape], data: c.data }
        if (c.quantized !== undefined) data.quantized = c.quantized
        ctx.setValue(node.name, constValue(data))
        continue
      }
      case 'Placeholder':
        ctx.fail('Placeholder is not one of the graph inputs')
        break
      case 'NoOp':
        continue
      case 'IdentityN':
        node.inputs.forEach((_, k) => {
          ctx.setValue(k === 0 ? node.name : `${node.name}:${k}`, ctx.input(node, k))
        })
        continue
      default: {
        const handler = OP_HANDLERS[node.op]
        if (handler === undefined) ctx.fail('unsupported op')
        let outs: Value[]
        try {
          outs = handler(node, ctx)
        } catch (e) {
          if (e instanceof ConversionError) throw e
          throw new ConversionError(`node "${node.name}" (op ${node.op}): ${(e as Error).message}`)
        }
        outs.forEach((v, k) => {
          ctx.setValue(k === 0 ? node.name : `${node.name}:${k}`, v)
        })
      }
    }
  }
  ctx.current = undefined

  // outputs
  const rename = new Map<string, string>()
  const producedBy = new Set(ctx.nodes.flatMap((n) => n.outputs))
  const graphInputNames = new Set(graphInputs.map((g) => g.name))
  const graphOutputs: OnnxValueInfo[] = []
  const outputDtypes: IODtype[] = []
  const usedSources = new Set<string>()
  for (const o of outputSpecs) {
    const v = ctx.value(o.tensor)
    const src = ctx.get(v, 'same', o.name)
    if (src !== o.name) {
      if (producedBy.has(src) && !graphInputNames.has(src) && !usedSources.has(src) && !rename.has(src))
        rename.set(src, o.name)
      else
        ctx.nodes.push({
          name: `${o.name}/output#node`,
          opType: 'Identity',
          inputs: [src],
          outputs: [o.name],
          attributes: {},
        })
    }
    usedSources.add(src)
    const info: OnnxValueInfo = { name: o.name, elemType: onnxType(v.dtype) }
    // fill dims that inference left unknown from the source signature (never override known dims)
    const sig = graph.outputs.find((g) => refKey(g.name) === refKey(o.tensor))?.shape
    const shape = v.shape?.map((d, i) => {
      const s = sig !== undefined && sig.length === v.shape?.length ? (sig[i] ?? -1) : -1
      return d < 0 && i > 0 && s > 0 ? s : d
    })
    const dims = toDims(shape, dynamicBatch)
    if (dims !== undefined) info.shape = dims
    graphOutputs.push(info)
    outputDtypes.push(v.dtype)
  }
  for (const n of ctx.nodes) {
    n.inputs = n.inputs.map((i) => rename.get(i) ?? i)
    n.outputs = n.outputs.map((i) => rename.get(i) ?? i)
  }

  // dead-code elimination
  const needed = new Set(graphOutputs.map((o) => o.name))
  const kept = []
  for (let i = ctx.nodes.length - 1; i >= 0; i--) {
    const n = ctx.nodes[i]
    if (n === undefined || !n.outputs.some((o) => needed.has(o))) continue
    kept.push(n)
    for (const inp of n.inputs) if (inp !== '') needed.add(inp)
  }
  kept.reverse()
  const initializers = ctx.initializers.filter((t) => needed.has(t.name))

  const bytes = encodeModel({
    irVersion: irVersionFor(opset),
    opsetImports: [{ domain: '', version: opset }],
    producerName: PRODUCER,
    producerVersion: PRODUCER_VERSION,
    ...(options.docString !== undefined ? { docString: options.docString } : {}),
    graph: {
      name: options.graphName ?? 'graph',
      nodes: kept,
      initializers,
      inputs: graphInputs,
      outputs: graphOutputs,
    },
    ...(options.metadata !== undefined ? { metadata: options.metadata } : {}),
  })

  const histogram: Record<string, number> = {}
  for (const n of kept) histogram[n.opType] = (histogram[n.opType] ?? 0) + 1
  const opHistogram: Record<string, number> = {}
  for (const k of Object.keys(histogram).sort()) opHistogram[k] = histogram[k] ?? 0

  return {
    bytes,
    inputs: graphInputs.map((g, i) => specOf(g, inputSpecs[i]?.dtype ?? 'float32')),
    outputs: graphOutputs.map((g, i) => specOf(g, outputDtypes[i] ?? 'float32')),
    opHistogram,
    opset,
  }
}

/** Convert a TFJS graph to ONNX model bytes (deterministic). */
export function convertGraph(graph: TfjsGraph, options: ConvertOptions = {}): Uint8Array {
  return convertGraphDetailed(graph, options).bytes
}
