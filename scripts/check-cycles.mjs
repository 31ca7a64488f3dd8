#!/usr/bin/env node
// Fails when the project's TypeScript sources import each other in a cycle. Type-only imports
// are erased at compile time and do not count.
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

const roots = ['protocol', 'server', 'client', 'models/converter', 'bench', 'test']
const files = []
function walk(dir) {
  let entries
  try {
    entries = readdirSync(dir)
  } catch {
    return
  }
  for (const entry of entries) {
    const path = join(dir, entry)
    if (statSync(path).isDirectory()) {
      if (entry !== 'node_modules' && entry !== 'dist') walk(path)
    } else if (path.endsWith('.ts') && !path.endsWith('.d.ts')) files.push(resolve(path))
  }
}
roots.forEach(walk)

const importRe = /^\s*(?:import|export)\s+(?!type\s)(?:[^'"]*?\s+from\s+)?['"](\.{1,2}\/[^'"]+)['"]/gm
const graph = new Map()
for (const file of files) {
  const source = readFileSync(file, 'utf8')
  const deps = []
  for (const match of source.matchAll(importRe)) {
    const target = resolve(dirname(file), match[1].replace(/\.js$/, '.ts'))
    if (files.includes(target)) deps.push(target)
  }
  graph.set(file, deps)
}

const state = new Map()
const stack = []
const cycles = []
function visit(node) {
  state.set(node, 'active')
  stack.push(node)
  for (const dep of graph.get(node) ?? []) {
    if (state.get(dep) === 'active') cycles.push([...stack.slice(stack.indexOf(dep)), dep])
    else if (!state.has(dep)) visit(dep)
  }
  stack.pop()
  state.set(node, 'done')
}
for (const node of graph.keys()) if (!state.has(node)) visit(node)

if (cycles.length > 0) {
  for (const cycle of cycles)
    console.error('import cycle: ' + cycle.map((f) => relative('.', f)).join(' -> '))
  process.exit(1)
}
console.log(`no import cycles among ${files.length} modules`)
