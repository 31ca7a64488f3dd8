import { createRequire } from 'node:module'
import type * as Uws from 'uWebSockets.js'
import { FacewireError } from '../errors.js'

export type UwsModule = typeof Uws

export interface EngineInfo {
  readonly name: 'uWebSockets.js'
  readonly version: string
  readonly binary: string
  readonly native: true
}

/**
 * Loads the native uWebSockets.js binary directly. The republished package's entry point falls
 * back to a slow pure-JS implementation when the binary fails to load, printing only a warning;
 * loading the .node file ourselves makes that fallback impossible: either we get the native
 * engine or we refuse to start with ERR_TRANSPORT_NATIVE_MISSING.
 */
export function loadNativeEngine(
  platform: string = process.platform,
  arch: string = process.arch,
  abi: string = process.versions.modules,
): { uws: UwsModule; engine: EngineInfo } {
  const require = createRequire(import.meta.url)
  const binary = `uws_${platform}_${arch}_${abi}.node`
  let uws: UwsModule
  let version: string
  try {
    uws = require(`uWebSockets.js/binaries/${binary}`) as UwsModule
    version = (require('uWebSockets.js/package.json') as { version: string }).version
  } catch (cause) {
    throw new FacewireError(
      'ERR_TRANSPORT_NATIVE_MISSING',
      `the native uWebSockets.js binary ${binary} could not be loaded; facewire does not run on the JS fallback`,
      { cause, details: { binary } },
    )
  }
  if (typeof uws.App !== 'function' || typeof uws.us_socket_local_port !== 'function') {
    throw new FacewireError(
      'ERR_TRANSPORT_NATIVE_MISSING',
      `${binary} loaded but does not export the uWebSockets.js API`,
      { details: { binary } },
    )
  }
  return { uws, engine: Object.freeze({ name: 'uWebSockets.js', version, binary, native: true }) }
}
