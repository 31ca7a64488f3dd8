/**
 * Pure image and geometry code for the worker pipeline: decode, resize and tensors, alignment,
 * NMS, quality and face picking. Nothing here keeps state, logs or reads globals; `configureSharp`
 * is the one call that changes process-wide settings, made once per worker.
 */
export type { Affine, Box, GrayImage, Point, RgbImage } from './types.js'
export { configureSharp, decodeImage, sniffFormat } from './decode.js'
export type { DecodeLimits, DecodeStrictness, ImageFormat } from './decode.js'
export { parseHeaderSize, readHeaderSize } from './image-header.js'
export type { HeaderSize } from './image-header.js'
export {
  cropPadSquare,
  cropPadSquareTensor,
  halve,
  letterbox,
  letterboxTensor,
  resizeBilinear,
  roundNonNegative,
  toFloatTensorNCHW,
  toFloatTensorNHWC,
  toGray,
} from './image.js'
export type { Letterbox, LetterboxOptions, ResizeOptions, TensorOptions } from './image.js'
export {
  applyAffine,
  arcFaceTransform,
  chipTransformFromTemplate,
  composeAffine,
  estimateSimilarity,
  extractChip,
  faceChipTransform,
  invertAffine,
  mapBox,
  warpAffineBilinear,
} from './align.js'
export type { FaceChip, FaceChip68Options, FaceChipOptions, WarpOptions } from './align.js'
export { hasFiniteCoordinates, interOcularDistance, toFivePoints } from './landmarks.js'
export type { FivePoints } from './landmarks.js'
export {
  ARCFACE_112_TEMPLATE,
  DLIB_CHIP_LANDMARKS_68,
  DLIB_FIVE_POINT_TEMPLATE,
  DLIB_MEAN_FACE_68,
  DLIB_MEAN_FACE_FIRST_INDEX,
  DLIB_MEAN_FACE_FIVE_POINTS,
} from './templates.js'
export { iou, nonMaxSuppression } from './nms.js'
export type { NmsOptions } from './nms.js'
export { assessQuality, chipStatistics, estimatePose } from './quality.js'
export type { FacePose, FaceQuality, QualityFactors } from './quality.js'
export { checkFace, pickFaces, PICK_FACE_DEFAULTS } from './pick-face.js'
export type { FaceCandidate, FaceRejection, PickedFace, PickedFaces, PickFaceOptions } from './pick-face.js'
