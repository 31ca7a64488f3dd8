#!/usr/bin/env node
/** The server's process entry (`npm start`, the container's command): start on the environment. */
import { startServer } from './main.js'

await startServer()
