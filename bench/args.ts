/** Command-line options the benchmarks share. */
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The project's root (the benchmarks run from dist/bench/). */
export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

/** --faces by default: $FACEWIRE_FACES, else the shared photo folder beside the project. */
export const defaultFacesDir = process.env['FACEWIRE_FACES'] ?? join(projectRoot, '../shared/faces')

/** `text` as a number > 0, an integer when `integer` is set; throws naming --`name`. */
export function parsePositive(name: string, text: string, integer = false): number {
  const value = Number(text)
  if (integer ? !Number.isInteger(value) || value <= 0 : !Number.isFinite(value) || value <= 0)
    throw new Error(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got '${text}'`)
  return value
}
