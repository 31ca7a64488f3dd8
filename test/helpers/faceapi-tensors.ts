/** Image tensors as face-api prepares them, for the parity tests of the converted face-api models. */
import * as tf from '@tensorflow/tfjs'
import sharp from 'sharp'

export interface Box {
  x: number
  y: number
  width: number
  height: number
}

/** An image file as a float HWC RGB tensor with values 0-255. */
export async function readRgb(file: string): Promise<tf.Tensor3D> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true })
  return tf.tidy(() => tf.tensor3d(new Uint8Array(data), [info.height, info.width, 3], 'int32').toFloat())
}

/** face-api toBatchTensor: zero-pad to square (centred or bottom/right), bilinear resize. */
export function toSquare(img: tf.Tensor3D, size: number, centre: boolean): tf.Tensor4D {
  return tf.tidy(() => {
    const [h, w] = img.shape
    const diff = Math.abs(h - w)
    const after = Math.round(diff * (centre ? 0.5 : 1))
    const pad: [number, number] = [diff - after, after]
    const pads: [number, number][] = h > w ? [[0, 0], pad, [0, 0]] : [pad, [0, 0], [0, 0]]
    let out = tf.pad(img, pads).expandDims<tf.Tensor4D>(0)
    if (out.shape[1] !== size || out.shape[2] !== size) out = tf.image.resizeBilinear(out, [size, size])
    return out
  })
}
