/** A wait bounded in time, for the shutdown of the outbound targets. */

/**
 * Resolves with `promise`'s value once it settles, or with undefined after `ms` (or when it
 * rejects), whichever comes first; leaves no timer behind.
 */
export function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms, undefined)
    const finish = (value: T | undefined): void => {
      clearTimeout(timer)
      resolve(value)
    }
    promise.then(finish, () => {
      finish(undefined)
    })
  })
}
