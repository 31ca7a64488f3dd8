# syntax=docker/dockerfile:1
# facewire: build, production dependencies and runtime as three stages (docs/operations.md,
# "Deployment"). scripts/check-production-layout.sh replays the npm and COPY steps below without
# Docker (a test runs it), so keep every step in that form: one RUN per step, exec-form CMD.

# Compiles TypeScript and bundles the kiosk: needs the dev dependencies, ships none of them.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# No install scripts: `prepare` (the build) needs the sources, and nothing here runs native code.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build
# Tests, benchmarks and the model converter stay out of the image (they import dev dependencies).
RUN rm -rf dist/test dist/bench dist/models dist/.tsbuildinfo

# Production dependencies only. --ignore-scripts skips the root `prepare` (tsc is a dev
# dependency); the native modules then run their own install scripts: better-sqlite3 (prebuilt
# binary or a compile), hnswlib-node (a compile), onnxruntime-node (its CUDA download is off:
# ONNXRUNTIME_NODE_INSTALL=skip, the switch its install script reads). sharp and uWebSockets.js ship prebuilt binaries and have no install script. Binaries for
# other platforms are removed (about 300 MB). The compilers and npm cache stay in this stage.
FROM node:20-bookworm-slim AS deps
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund
RUN ONNXRUNTIME_NODE_INSTALL=skip npm rebuild better-sqlite3 hnswlib-node onnxruntime-node
RUN find node_modules/onnxruntime-node/bin/napi-v6 -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} + && find node_modules/onnxruntime-node/bin/napi-v6/linux -mindepth 1 -maxdepth 1 ! -name "$(node -p process.arch)" -exec rm -rf {} + && find node_modules/uWebSockets.js/binaries -name '*.node' ! -name "uws_linux_$(node -p process.arch)_*" -delete

# The image: compiled JavaScript, production node_modules and the models (nothing is fetched at
# start). Runs as uid 1000 (numeric, so `runAsNonRoot` can verify it), writes only under
# FACEWIRE_DATA_DIR (/data, a volume): the root filesystem can be read-only.
FROM node:20-bookworm-slim AS runtime
# ORT_DISABLE_TELEMETRY: onnxruntime-node's Linux build otherwise starts Microsoft's telemetry
# client (uploads to events.data.microsoft.com, a debug log in /tmp and a device id in $HOME).
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 FACEWIRE_DATA_DIR=/data ORT_DISABLE_TELEMETRY=1
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY models/manifest.json models/cohort.json models/*.onnx ./models/
RUN mkdir -p /data && chown 1000:1000 /data && chmod 0700 /data
USER 1000:1000
VOLUME ["/data"]
EXPOSE 8080
# SIGTERM starts the graceful shutdown, bounded by FACEWIRE_SHUTDOWN_TIMEOUT_MS (10 s) plus a 1 s
# hard exit: give `docker stop -t` / compose's stop_grace_period more than that (15 s).
STOPSIGNAL SIGTERM
# Liveness only (/health); load balancers should use /ready. No curl in the slim image: node.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/health`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/server/entry.js"]
