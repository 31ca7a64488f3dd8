/**
 * How the admin commands print: an aligned table for a person at a terminal, JSON for scripts.
 * `--json` and `--table` choose; without either, a table when stdout is a TTY and JSON when it is
 * a pipe or a file, so `facewire identities list | jq` works without a flag.
 */

export type OutputMode = 'table' | 'json'

export function outputMode(
  flags: { json?: boolean | undefined; table?: boolean | undefined },
  stdoutIsTty: boolean,
): OutputMode {
  if (flags.json === true) return 'json'
  if (flags.table === true) return 'table'
  return stdoutIsTty ? 'table' : 'json'
}

export interface Column<T> {
  header: string
  value: (row: T) => string | number | boolean | null
}

/** Rows under a header line, each column as wide as its widest cell, two spaces apart. */
export function formatTable<T>(columns: readonly Column<T>[], rows: readonly T[]): string {
  const cells = rows.map((row) =>
    columns.map((column) => {
      const value = column.value(row)
      return value === null ? '-' : String(value)
    }),
  )
  const widths = columns.map((column, i) =>
    Math.max(column.header.length, ...cells.map((line) => (line[i] ?? '').length)),
  )
  const render = (line: readonly string[]): string =>
    line
      .map((cell, i) => (i === line.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  return [render(columns.map((column) => column.header.toUpperCase())), ...cells.map(render)].join('\n')
}

/** `name: value` lines, names aligned (one record). */
export function formatRecord(fields: readonly (readonly [string, string | number | null])[]): string {
  const width = Math.max(...fields.map(([name]) => name.length))
  return fields
    .map(([name, value]) => `${`${name}:`.padEnd(width + 1)} ${value === null ? '-' : String(value)}`)
    .join('\n')
}
