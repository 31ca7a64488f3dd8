import type { Point } from './types.js'

/*
 * Canonical landmark positions that aligned faces are warped onto.
 *
 * dlib: `get_face_chip_details` in dlib/image_transforms/interpolation.h (davisking/dlib, Boost
 * Software License). The two arrays below are its `mean_face_shape_x` / `mean_face_shape_y`,
 * "average positions of face points 17-67" on the unit square, copied digit for digit. dlib's
 * ResNet face embedder (dlib_face_recognition_resnet_model_v1, FaceRes in face-api) was trained on
 * chips cut with them at size 150, padding 0.25.
 */
const MEAN_FACE_SHAPE_X = [
  0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124, 0.904991, 0.98004,
  0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036, 0.490127, 0.554217, 0.613373, 0.121737, 0.187122,
  0.265825, 0.334606, 0.260918, 0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
  0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721, 0.490127, 0.423532,
  0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874, 0.553364, 0.490127, 0.42689,
] as const
const MEAN_FACE_SHAPE_Y = [
  0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891, 0.0187482, 0.038915, 0.106454,
  0.203352, 0.307009, 0.409805, 0.515625, 0.587326, 0.609345, 0.628106, 0.609345, 0.587326, 0.216423,
  0.178758, 0.179852, 0.231733, 0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077,
  0.245099, 0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805, 0.902192,
  0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746, 0.784792, 0.824182, 0.831803,
  0.824182,
] as const

/** First iBUG 68-point index that dlib's mean face covers (the jaw line, 0..16, has no entry). */
export const DLIB_MEAN_FACE_FIRST_INDEX = 17

/**
 * dlib's mean face on the unit square, keyed by iBUG 68-point index: entry i is landmark
 * i + 17, for i in 0..50.
 */
export const DLIB_MEAN_FACE_68: readonly Point[] = MEAN_FACE_SHAPE_X.map((x, i) => ({
  x,
  y: MEAN_FACE_SHAPE_Y[i] ?? Number.NaN,
}))

/**
 * The 33 landmarks dlib fits a face chip to: 17..67 without the eyebrows (17..26) and without the
 * lower lip (55..59, 65..67), i.e. nose bridge and nostrils 27..35, eyes 36..47, upper lip
 * 48..54 and 60..64. Brows and lower lip move with expression; these points do not.
 */
export const DLIB_CHIP_LANDMARKS_68: readonly number[] = Object.freeze([
  27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53,
  54, 60, 61, 62, 63, 64,
])

/**
 * dlib's own 5-point template (same function, the `num_parts() == 5` branch), for dlib's
 * shape_predictor_5_face_landmarks, whose points are NOT eye centres: subject's left eye outer
 * and inner corner, subject's right eye outer and inner corner, base of the nose (subnasale).
 */
export const DLIB_FIVE_POINT_TEMPLATE: readonly Point[] = Object.freeze([
  { x: 0.8595674595992, y: 0.2134981538014 },
  { x: 0.6460604764104, y: 0.2289674387677 },
  { x: 0.1205750620789, y: 0.2137274526848 },
  { x: 0.3340850613712, y: 0.2290642403242 },
  { x: 0.4901123135679, y: 0.6277975316475 },
])

/**
 * Eye centres, nose tip and mouth corners (FivePoints order) of dlib's mean face, on the unit
 * square: derived here from the 68-point mean face the same way toFivePoints derives them from
 * 68 detected points (eye centre = mean of 36..41 / 42..47, nose tip = 30, corners = 48, 54). A
 * 5-point detector warped onto it lands on (nearly) dlib's 150 px chip framing.
 */
export const DLIB_MEAN_FACE_FIVE_POINTS: readonly Point[] = Object.freeze([
  meanFacePoint([36, 37, 38, 39, 40, 41]),
  meanFacePoint([42, 43, 44, 45, 46, 47]),
  meanFacePoint([30]),
  meanFacePoint([48]),
  meanFacePoint([54]),
])

/**
 * The ArcFace / insightface 5-point template for 112x112 crops (`arcface_dst` in insightface's
 * python-package/insightface/utils/face_align.py), in pixels, FivePoints order.
 */
export const ARCFACE_112_TEMPLATE: readonly Point[] = Object.freeze([
  { x: 38.2946, y: 51.6963 },
  { x: 73.5318, y: 51.5014 },
  { x: 56.0252, y: 71.7366 },
  { x: 41.5493, y: 92.3655 },
  { x: 70.7299, y: 92.2041 },
])

function meanFacePoint(indices: readonly number[]): Point {
  let x = 0
  let y = 0
  for (const index of indices) {
    x += MEAN_FACE_SHAPE_X[index - DLIB_MEAN_FACE_FIRST_INDEX] ?? Number.NaN
    y += MEAN_FACE_SHAPE_Y[index - DLIB_MEAN_FACE_FIRST_INDEX] ?? Number.NaN
  }
  return Object.freeze({ x: x / indices.length, y: y / indices.length })
}
