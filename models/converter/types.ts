/**
 * Shared types of the TFJS graph-model -> ONNX converter.
 *
 * These types are a stable contract: other converters (e.g. models/converter/faceapi/)
 * synthesize {@link TfjsGraph}s in memory and hand them to `convertGraph`, and register
 * {@link ModelRecipe}s for `models/converter/build.ts`.
 */

/**
 * One attribute value of a TF node, encoded exactly as in a TFJS `model.json`
 * (`modelTopology.node[].attr[name]`):
 *  - `{ i: "3" }` int (string or number), `{ f: 0.5 }` float, `{ b: true }` bool,
 *  - `{ s: "TkhXQw==" }` string/bytes as base64 (e.g. padding "SAME", data_format "NHWC"),
 *  - `{ type: "DT_FLOAT" }` dtype,
 *  - `{ list: { i: ["1","2","2","1"] } }`, `{ list: { s: [base64...] } }`, `{ list: { f: [...] } }`,
 *  - `{ shape: { dim: [{ size: "-1" }, ...] } }` (or `{ shape: { unknownRank: true } }`),
 *  - `{ tensor: { dtype: "DT_FLOAT", tensorShape: { dim: [...] } } }` (Const `value`; data lives in weights).
 */
export interface TfAttrValue {
  i?: string | number
  f?: number
  b?: boolean
  s?: string
  type?: string
  shape?: TfShapeProto
  tensor?: TfTensorProto
  list?: {
    i?: (string | number)[]
    f?: number[]
    b?: boolean[]
    s?: string[]
    type?: string[]
    shape?: TfShapeProto[]
  }
  func?: unknown
}

export interface TfShapeProto {
  dim?: { size?: string | number; name?: string }[]
  unknownRank?: boolean
}

export interface TfTensorProto {
  dtype?: string
  tensorShape?: TfShapeProto
}

/**
 * A node in the in-memory graph. Uses TensorFlow op names (`Conv2D`, `_FusedConv2D`,
 * `DepthwiseConv2dNative`, `BiasAdd`, `Relu`, `MaxPool`, `ConcatV2`, ...) and the TFJS
 * attr encoding above. `inputs` reference tensors as `nodeName` (output 0) or
 * `nodeName:k`; control inputs (`^name`) are ignored. Tensors are NHWC unless the node
 * says otherwise via `data_format`.
 */
export interface TfNode {
  name: string
  op: string
  inputs: string[]
  attrs: Record<string, TfAttrValue>
}

/** Element type of a decoded constant. Quantized TFJS weights are dequantized to float32. */
export type TfConstDtype = 'float32' | 'int32' | 'bool'

/**
 * The uint8/uint16 source of a float32 constant that came from quantized TFJS weights
 * (`quantization: {dtype, scale, min}`). `data[i]` holds the quantized value of element i
 * (same element order as the constant's float data), and the float value is
 * `Math.fround(data[i] * scale + min)` (float64 math, as tfjs-core `io.decodeWeights`).
 * The converter then stores the constant as a uint8/uint16 initializer plus an in-graph
 * dequantization that onnxruntime constant-folds at session load.
 */
export interface TfQuantization {
  dtype: 'uint8' | 'uint16'
  scale: number
  min: number
  data: Uint8Array | Uint16Array
}

/** A constant tensor (the value of a `Const` node). `data.length` equals the product of `shape`. */
export interface TfConstTensor {
  dtype: TfConstDtype
  shape: number[]
  data: Float32Array | Int32Array | Uint8Array
  /** For float32 constants decoded from uint8/uint16-quantized weights: the quantized values. */
  quantized?: TfQuantization
}

/** A graph input or output. `name` is a tensor reference (`"input_1"`, `"Identity:0"`). */
export interface TfGraphIO {
  name: string
  /** Optional signature key (informational). */
  key?: string
  dtype: 'float32' | 'int32'
  /** Static shape; -1 for unknown dimensions. Undefined = unknown. */
  shape?: number[]
}

/**
 * A TFJS graph model in memory: the converter's input.
 *
 * - `nodes`: every node of the graph, including `Const` and `Placeholder` nodes.
 * - `constants`: value of every `Const` node, keyed by node name.
 * - `inputs`: graph inputs (Placeholders). If empty, all Placeholder nodes are inputs.
 * - `outputs`: graph outputs. If empty, every non-Const node whose output is not consumed.
 */
export interface TfjsGraph {
  nodes: TfNode[]
  constants: Map<string, TfConstTensor>
  inputs: TfGraphIO[]
  outputs: TfGraphIO[]
  /** Free-form provenance (e.g. `convertedBy`), not used by the converter. */
  meta?: Record<string, string>
}

/** TFJS `model.json` entry of `weightsManifest[].weights[]`. */
export interface TfjsWeightSpec {
  name: string
  shape: number[]
  dtype: string
  quantization?: {
    dtype: 'uint8' | 'uint16' | 'float16'
    scale?: number
    min?: number
    original_dtype?: string
  }
}

/** The subset of a TFJS `model.json` the loader reads. */
export interface TfjsModelJson {
  format?: string
  generatedBy?: string
  convertedBy?: string | null
  modelTopology: {
    node: {
      name: string
      op: string
      input?: string[]
      attr?: Record<string, TfAttrValue>
      device?: string
    }[]
    library?: unknown
    versions?: unknown
  }
  weightsManifest?: { paths: string[]; weights: TfjsWeightSpec[] }[]
  signature?: TfSignature
  userDefinedMetadata?: { signature?: TfSignature } & Record<string, unknown>
}

export interface TfSignature {
  inputs?: Record<string, { name: string; dtype?: string; tensorShape?: TfShapeProto }>
  outputs?: Record<string, { name: string; dtype?: string; tensorShape?: TfShapeProto }>
}

/** Options of `convertGraph`. */
export interface ConvertOptions {
  /** ONNX opset of the default domain (default 18; supported: 18..21). */
  opset?: number
  /**
   * Graph inputs to use (by TF tensor name) with optional ONNX name and shape override.
   * Default: `graph.inputs` with their own names.
   */
  inputs?: { tensor: string; name?: string; shape?: number[] }[]
  /** Graph outputs (by TF tensor name) with optional ONNX name. Default: `graph.outputs`. */
  outputs?: { tensor: string; name?: string }[]
  /**
   * Make dimension 0 of inputs symbolic (`dim_param "N"`) when it is -1 in the source
   * (default true). Set `batch: 1` to pin it to 1 (needed when the graph hard-codes batch 1).
   */
  batch?: 'dynamic' | number
  /** Store float initializers whose values are exactly representable in float16 as float16 + Cast (default true). */
  compactFloat16?: boolean
  /**
   * Store float constants that came from uint8/uint16-quantized weights ({@link TfConstTensor.quantized})
   * as uint8/uint16 initializers plus an exact in-graph dequantization that onnxruntime constant-folds
   * at session load (default true). Values are bit-identical either way; only the file size differs.
   */
  keepQuantized?: boolean
  /** ONNX graph name (default "graph"). */
  graphName?: string
  /** Model doc string. */
  docString?: string
  /** Extra metadata_props, written in the given order. */
  metadata?: [string, string][]
}

export type IODtype = 'float32' | 'int32' | 'int64' | 'bool'

/** Description of a converted model's input or output. Shapes use "N" for the dynamic batch. */
export interface TensorSpec {
  name: string
  dtype: IODtype
  shape: (number | string)[]
}

export interface ConvertResult {
  bytes: Uint8Array
  inputs: TensorSpec[]
  outputs: TensorSpec[]
  /** ONNX op_type -> node count, sorted by op name. */
  opHistogram: Record<string, number>
  opset: number
}

/** How raw pixels must be turned into the model input. */
export interface Preprocessing {
  width: number
  height: number
  /** Channel order of the last axis. */
  channels: 'RGB' | 'BGR' | 'GRAY'
  layout: 'NHWC' | 'NCHW'
  dtype: 'float32'
  /** input = pixel * scale + offset, with pixel in 0..255. */
  scale: number
  offset: number
  /** Resulting input value range. */
  range: [number, number]
  /** Human-readable notes (crop, alignment, ...). */
  notes?: string
}

/** Source file of a recipe, relative to its npm package root. */
export interface RecipeSource {
  package: string
  /** Files (relative to the package root) that are hashed into the manifest. */
  files: string[]
  /** Upstream origin of the weights (informational). */
  origin?: string
  /** Files come from this npm tarball (`npm pack`), checked against npm's integrity string. */
  tarball?: { version: string; integrity: string }
}

/**
 * What a recipe's build produces: a TFJS graph for the converter, or an ONNX file taken as it is
 * (its inputs, outputs and opset are read from the file).
 */
export type RecipeBuildResult = { graph: TfjsGraph; options?: ConvertOptions } | { onnx: Uint8Array }

/** How a face crop must be aligned before it is fed to an embedder. */
export interface Alignment {
  /**
   * `arcface`: the five points (eye centres, nose tip, mouth corners) fitted by least squares onto
   * the ArcFace 5-point template at the input's size (insightface's `norm_crop`), instead of a
   * framing on dlib's mean face.
   */
  template?: 'arcface'
  /** Margin added around dlib's mean face (which spans the unit square), as a fraction of its size. */
  padding?: number
  /** Or: the crop is the square of this side (in mean-face units) centred at `center`. */
  side?: number
  center?: [number, number]
}

/**
 * A model the build converts into `models/<id>.onnx` and registers in `models/manifest.json`.
 */
export interface ModelRecipe {
  id: string
  /** Short description of what the model does. */
  description: string
  license: string
  /** What is and is not known of where the weights come from (copied into the manifest). */
  provenance?: string
  source: RecipeSource
  preprocessing: Preprocessing
  /** Face alignment the model expects (embedders); copied into the manifest entry. */
  alignment?: Alignment
  /** How a 68-point landmark model frames the face (server/pipeline/analyze.ts); copied too. */
  landmarkFraming?: 'faceapi' | 'faceplugin'
  build(): Promise<RecipeBuildResult>
}

/** One entry of models/manifest.json. */
export interface ManifestEntry {
  id: string
  description: string
  file: string
  sha256: string
  bytes: number
  opset: number
  source: {
    package: string
    version: string
    origin?: string
    /** npm's integrity of the package tarball, where the build takes files from a packed tarball. */
    integrity?: string
    files: { path: string; sha256: string }[]
  }
  license: string
  /** What is and is not known of where the weights come from. */
  provenance?: string
  inputs: TensorSpec[]
  outputs: TensorSpec[]
  preprocessing: Preprocessing
  alignment?: Alignment
  landmarkFraming?: 'faceapi' | 'faceplugin'
}

/** Which manifest models the face pipeline uses for each stage (values are model ids). */
export interface PipelineSpec {
  detector: string
  /** The detector at a smaller input, for small frames of streams. */
  smallDetector?: string
  fallbackDetector: string
  landmarks: string
  embedder: string
  /** A second embedder whose cosine is fused with the first's at this weight. */
  secondaryEmbedder?: { model: string; weight: number }
  /** Passive liveness and eye-state models, run when a frame asks for them. */
  liveness?: string
  eyes?: string
}

export interface Manifest {
  version: 1
  pipeline: PipelineSpec
  models: ManifestEntry[]
}
