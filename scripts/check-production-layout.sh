#!/usr/bin/env bash
# Replays the Dockerfile without Docker and checks the result, as test/integration/
# production-layout.test.ts and CI run it:
#
#   1. the context: the working tree's files (tracked and untracked, not ignored) less .dockerignore;
#   2. the `build` and `deps` stages, in parallel, each in its own folder standing for its WORKDIR:
#      their COPY and RUN steps as written (RUN `apt-get` is skipped: the host's toolchain stands
#      in; the build stage's `npm ci` is replaced by this checkout's node_modules unless
#      FACEWIRE_LAYOUT_FULL=1, since its dev tools are not what ships);
#   3. the `runtime` stage's COPY steps (its RUN steps are system setup, done here by hand: the
#      data folder owned by USER), then the whole app folder made read-only (a read-only root);
#   4. the image's CMD started with its ENV, as its numeric USER (via setpriv when run as root),
#      HOME in the read-only folder, and what `docker run` would add: a free PORT on 127.0.0.1, a
#      data folder for FACEWIRE_DATA_DIR, FACEWIRE_JWT_SECRET (production refuses to start
#      without it) and one worker;
#   5. checks: /ready answers 200, the HEALTHCHECK command exits 0, /kiosk is served with its CSP,
#      the process runs under a non-zero uid, `npm ls --omit=dev` is complete, no package the
#      lockfile marks dev-only is installed, nothing was written outside the data folder, no
#      error was logged, and SIGTERM (STOPSIGNAL) ends it with status 0.
#
# Prints progress on stderr and one JSON summary line on stdout. Needs the npm registry (npm ci),
# git, setpriv (util-linux) when run as root, and the native toolchain the Dockerfile installs
# (python3, make, g++). FACEWIRE_LAYOUT_KEEP=1 keeps the work folder.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOCKERFILE=$ROOT/Dockerfile
WORK=$(mktemp -d "${TMPDIR:-/tmp}/facewire-layout.XXXXXX")
CTX=$WORK/context
STAGES=$WORK/stages
DATA=$WORK/data
SERVER_PID=

log() { printf 'layout: %s\n' "$*" >&2; }
fail() {
  printf 'layout: FAILED: %s\n' "$*" >&2
  exit 1
}
elapsed() { echo $((SECONDS - $1)); }

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -KILL "$SERVER_PID" || true; fi
  if [ "${FACEWIRE_LAYOUT_KEEP:-0}" = 1 ]; then
    log "kept $WORK"
  else
    chmod -R u+w "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

# ---- the Dockerfile, one instruction per line: stage <TAB> INSTRUCTION <TAB> arguments ----
instructions() {
  awk '
    acc == "" && /^[[:space:]]*#/ { next }
    {
      sub(/\r$/, "")
      line = $0
      if (acc != "") { sub(/^[[:space:]]+/, "", line); acc = acc " " line } else acc = line
      if (acc ~ /\\[[:space:]]*$/) { sub(/\\[[:space:]]*$/, "", acc); next }
      sub(/^[[:space:]]+/, "", acc)
      if (acc == "") next
      name = acc; sub(/[[:space:]].*$/, "", name); name = toupper(name)
      args = acc; sub(/^[^[:space:]]+[[:space:]]*/, "", args)
      if (name == "FROM") { stage = args; sub(/^.*[[:space:]][Aa][Ss][[:space:]]+/, "", stage) }
      printf "%s\t%s\t%s\n", stage, name, args
      acc = ""
    }' "$DOCKERFILE"
}
mapfile -t STEPS < <(instructions)
[ "${#STEPS[@]}" -gt 0 ] || fail "no instructions in $DOCKERFILE"

declare -A WORKDIR=()
for step in "${STEPS[@]}"; do
  IFS=$'\t' read -r stage name args <<<"$step"
  if [ "$name" = WORKDIR ]; then WORKDIR[$stage]=$args; fi
done
for stage in build deps runtime; do
  [ -n "${WORKDIR[$stage]:-}" ] || fail "the Dockerfile has no stage '$stage' with a WORKDIR"
  mkdir -p "$STAGES/$stage"
done

# Exec-form JSON array -> NUL-separated words.
json_words() { node -e 'for (const w of JSON.parse(process.argv[1])) process.stdout.write(w + "\0")' "$1"; }

# ---- the build context ----
IGNORE_PATTERNS=()
while IFS= read -r pattern || [ -n "$pattern" ]; do
  pattern=${pattern%%#*}
  pattern=${pattern%"${pattern##*[![:space:]]}"}
  if [ -n "$pattern" ]; then IGNORE_PATTERNS+=("$pattern"); fi
done <"$ROOT/.dockerignore"
# Whether .dockerignore leaves $1 out (last matching pattern wins; `!` brings a path back).
dockerignored() {
  local file=$1 excluded=1 pattern negate
  for pattern in "${IGNORE_PATTERNS[@]}"; do
    negate=0
    if [ "${pattern:0:1}" = '!' ]; then negate=1 pattern=${pattern:1}; fi
    pattern=${pattern#/}
    pattern=${pattern%/}
    # shellcheck disable=SC2053 # the pattern is a glob
    if [[ $file == $pattern || $file == $pattern/* ]]; then excluded=$negate; fi
  done
  return "$excluded"
}
start=$SECONDS
mkdir -p "$CTX"
(
  cd "$ROOT"
  git ls-files -z -co --exclude-standard | while IFS= read -r -d '' file; do
    if [ -e "$file" ] && ! dockerignored "$file"; then printf '%s\0' "$file"; fi
  done | tar --null -T - -cf -
) | tar -xf - -C "$CTX"
[ -f "$CTX/package-lock.json" ] || fail "the context has no package-lock.json"
log "context: $(find "$CTX" -type f | wc -l) files ($(elapsed "$start") s)"

# ---- COPY ----
# Maps a path of stage $1's image to this replay's folder for that stage.
stage_path() {
  local stage=$1 path=$2 root=${WORKDIR[$1]}
  case $path in
    "$root") printf '%s' "$STAGES/$stage" ;;
    "$root"/*) printf '%s' "$STAGES/$stage/${path#"$root"/}" ;;
    /*) fail "cannot map $path of stage $stage (outside its WORKDIR $root)" ;;
    *) printf '%s' "$STAGES/$stage/$path" ;;
  esac
}

replay_copy() {
  local stage=$1 args=$2 from= word sources=() dest target
  local -a words
  read -r -a words <<<"$args"
  for word in "${words[@]}"; do
    case $word in
      --from=*) from=${word#--from=} ;;
      --chown=* | --chmod=* | --link) ;;
      --*) fail "COPY option $word is not replayed" ;;
      *) sources+=("$word") ;;
    esac
  done
  dest=${sources[-1]}
  unset 'sources[-1]'
  case $dest in
    /*) target=$(stage_path "$stage" "$dest") ;;
    *) target=$STAGES/$stage/$dest ;;
  esac
  local -a expanded=()
  local source matches
  shopt -s nullglob
  for source in "${sources[@]}"; do
    if [ -n "$from" ]; then
      source=$(stage_path "$from" "$source")
    else
      source=$CTX/$source
    fi
    # shellcheck disable=SC2206 # glob expansion is the point
    matches=($source)
    [ "${#matches[@]}" -gt 0 ] || fail "COPY $args: nothing matches ${source#"$WORK"/}"
    expanded+=("${matches[@]}")
  done
  shopt -u nullglob
  if [ "${#expanded[@]}" -gt 1 ] || [ "${dest: -1}" = / ] || [ -d "${expanded[0]}" ]; then
    mkdir -p "$target"
    for source in "${expanded[@]}"; do
      if [ -d "$source" ]; then cp -a "$source/." "$target/"; else cp -a "$source" "$target/"; fi
    done
  else
    mkdir -p "$(dirname "$target")"
    cp -a "${expanded[0]}" "$target"
  fi
}

# Replays stage $1's COPY and RUN steps (logged to $WORK/$1.log).
replay_stage() {
  local stage=$1 step s name args
  for step in "${STEPS[@]}"; do
    IFS=$'\t' read -r s name args <<<"$step"
    [ "$s" = "$stage" ] || continue
    case $name in
      COPY)
        echo "+ COPY $args"
        replay_copy "$stage" "$args" || return 1
        ;;
      RUN)
        case $args in
          apt-get*)
            echo "(skipped: system packages) RUN $args"
            continue
            ;;
          'npm ci '*)
            if [ "$stage" = build ] && [ "${FACEWIRE_LAYOUT_FULL:-0}" != 1 ]; then
              echo "(instead: this checkout's node_modules) RUN $args"
              ln -s "$ROOT/node_modules" "$STAGES/$stage/node_modules"
              continue
            fi
            ;;
        esac
        echo "+ RUN $args"
        (cd "$STAGES/$stage" && bash -euo pipefail -c "$args") || return 1
        ;;
    esac
  done
}

# Each stage in the background, under set -e (inherited by the subshell), logged to its file.
declare -A STAGE_PID=()
for stage in build deps; do
  (
    begun=$SECONDS
    replay_stage "$stage" >"$WORK/$stage.log" 2>&1
    log "stage $stage ($(elapsed "$begun") s)"
  ) &
  STAGE_PID[$stage]=$!
done
for stage in build deps; do
  wait "${STAGE_PID[$stage]}" || fail "stage $stage; the end of its log:
$(tail -n 40 "$WORK/$stage.log")"
done

# ---- the runtime stage ----
APP=$STAGES/runtime
ENV_PAIRS=()
USER_SPEC=
CMD_JSON=
HEALTH_JSON=
STOP_SIGNAL=SIGTERM
for step in "${STEPS[@]}"; do
  IFS=$'\t' read -r stage name args <<<"$step"
  [ "$stage" = runtime ] || continue
  case $name in
    COPY) replay_copy runtime "$args" ;;
    ENV)
      read -r -a pairs <<<"$args"
      for pair in "${pairs[@]}"; do
        [[ $pair == *=* ]] || fail "ENV $args: write ENV as KEY=value pairs"
        ENV_PAIRS+=("$pair")
      done
      ;;
    USER) USER_SPEC=$args ;;
    CMD) CMD_JSON=$args ;;
    STOPSIGNAL) STOP_SIGNAL=$args ;;
    HEALTHCHECK) HEALTH_JSON=${args#*CMD } ;;
  esac
done
[[ $USER_SPEC =~ ^([0-9]+):([0-9]+)$ ]] || fail "USER must be numeric uid:gid (got '$USER_SPEC')"
IMAGE_UID=${BASH_REMATCH[1]}
IMAGE_GID=${BASH_REMATCH[2]}
[ "$IMAGE_UID" != 0 ] || fail "USER is root"
[[ $CMD_JSON == \[* ]] || fail "CMD must be in exec form (a JSON array)"
[[ $HEALTH_JSON == \[* ]] || fail "HEALTHCHECK CMD must be in exec form (a JSON array)"
mapfile -d '' -t CMD < <(json_words "$CMD_JSON")
mapfile -d '' -t HEALTH < <(json_words "$HEALTH_JSON")

image_node=$(awk '$1 == "FROM" && tolower($3) == "as" && $4 == "runtime" { print $2 }' "$DOCKERFILE")
image_major=$(printf '%s' "$image_node" | sed -n 's/^node:\([0-9]*\).*/\1/p')
host_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$image_major" != "$host_major" ]; then
  log "warning: the image runs Node $image_major ($image_node), this host Node $host_major"
fi

mkdir -p "$DATA"
if [ "$(id -u)" = 0 ]; then
  chown "$IMAGE_UID:$IMAGE_GID" "$DATA"
  AS_USER=(setpriv "--reuid=$IMAGE_UID" "--regid=$IMAGE_GID" --clear-groups --)
else
  log "not root: running as $(id -u) instead of the image's $IMAGE_UID"
  AS_USER=()
fi
chmod 0700 "$DATA"
# The image's root filesystem may be read-only: so is everything here but the data folder.
chmod 0755 "$WORK" "$STAGES"
chmod -R a-w "$APP"

PORT=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close() })')
SECRET=$(node -p 'require("crypto").randomBytes(36).toString("base64")')
RUN_ENV=(
  "PATH=$(dirname "$(command -v node)"):/usr/local/bin:/usr/bin:/bin"
  "HOME=$APP"
  "${ENV_PAIRS[@]}"
  HOST=127.0.0.1
  "PORT=$PORT"
  "FACEWIRE_DATA_DIR=$DATA"
  "FACEWIRE_JWT_SECRET=$SECRET"
  FACEWIRE_WORKERS=1
)
MARK=$WORK/started
touch "$MARK"
sleep 1 # mtimes: anything written from now on is newer than the mark
log "starting: ${CMD[*]} as ${USER_SPEC} in ${APP#"$WORK"/} on port $PORT"
started_at=$SECONDS
(cd "$APP" && exec env -i "${RUN_ENV[@]}" "${AS_USER[@]}" "${CMD[@]}") >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

BASE=http://127.0.0.1:$PORT
# GET $1 -> "status<TAB>content-security-policy"; "0" when nothing answers.
probe() {
  node -e '
    fetch(process.argv[1]).then(
      (r) => { console.log(`${r.status}\t${r.headers.get("content-security-policy") ?? ""}`); return r.body?.cancel() },
      () => console.log("0\t"),
    )' "$1"
}
ready=0
for _ in $(seq 1 600); do
  kill -0 "$SERVER_PID" 2>/dev/null || fail "the server exited before it was ready:
$(tail -n 30 "$WORK/server.log")"
  ready=$(probe "$BASE/ready" | cut -f1)
  [ "$ready" = 200 ] && break
  sleep 0.1
done
[ "$ready" = 200 ] || fail "/ready did not answer 200 within 60 s:
$(tail -n 30 "$WORK/server.log")"
ready_s=$(elapsed "$started_at")
log "ready in ~${ready_s} s"

uid=$(awk '/^Uid:/ { print $2 }' "/proc/$SERVER_PID/status")
set +e
(cd "$APP" && env -i "${RUN_ENV[@]}" "${AS_USER[@]}" "${HEALTH[@]}")
health=$?
set -e
IFS=$'\t' read -r kiosk_status kiosk_csp < <(probe "$BASE/kiosk")

set +e
npm ls --omit=dev --all --prefix "$APP" >"$WORK/npm-ls.log" 2>&1
npm_ls=$?
set -e
dev_present=$(node -e '
  const { existsSync } = require("fs")
  const [lockFile, app] = process.argv.slice(1)
  const lock = require(lockFile)
  // What the lockfile marks dev: reachable from devDependencies only. A devDependency that a
  // production package also needs (mqtt needs @types/ws and @types/node) is not marked, and ships.
  const dev = Object.entries(lock.packages).filter(([path, entry]) => path !== "" && entry.dev === true)
  const present = dev.map(([path]) => path).filter((path) => existsSync(`${app}/${path}`))
  console.log(JSON.stringify(present))' "$CTX/package-lock.json" "$APP")

# The app folder, and (when the server had a uid of its own) anything of that uid in the temp dir.
writes=$( (
  find "$APP" -newer "$MARK" -print
  if [ "$uid" != "$(id -u)" ]; then
    find "${TMPDIR:-/tmp}" -xdev -user "$uid" -newer "$MARK" ! -path "$WORK" ! -path "$WORK/*" -print 2>/dev/null || true
  fi
) | node -e 'console.log(JSON.stringify(require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean)))')

stop_at=$SECONDS
kill "-${STOP_SIGNAL#SIG}" "$SERVER_PID"
set +e
wait "$SERVER_PID"
exit_code=$?
set -e
SERVER_PID=
stop_s=$(elapsed "$stop_at")
errors=$(node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean)
  const bad = lines.filter((line) => { try { return JSON.parse(line).level >= 50 } catch { return true } })
  console.log(JSON.stringify(bad))' "$WORK/server.log")

summary=$(node -e '
  const [uid, ready, health, kioskStatus, kioskCsp, npmLs, dev, writes, exitCode, errors, readyS, stopS, appKiB, modulesKiB] = process.argv.slice(1)
  console.log(JSON.stringify({
    uid: Number(uid), ready: Number(ready), healthcheck: Number(health), kiosk: Number(kioskStatus),
    kioskCsp: kioskCsp !== "", npmLsOmitDev: Number(npmLs), devPackages: JSON.parse(dev),
    writesOutsideData: JSON.parse(writes), exitCode: Number(exitCode), errorLines: JSON.parse(errors),
    readySeconds: Number(readyS), stopSeconds: Number(stopS),
    appMiB: Math.round(Number(appKiB) / 1024), nodeModulesMiB: Math.round(Number(modulesKiB) / 1024),
  }))' "$uid" "$ready" "$health" "$kiosk_status" "${kiosk_csp:-}" "$npm_ls" "$dev_present" "$writes" \
  "$exit_code" "$errors" "$ready_s" "$stop_s" "$(du -sk "$APP" | cut -f1)" "$(du -sk "$APP/node_modules" | cut -f1)")
printf '%s\n' "$summary"

problems=()
[ "$uid" != 0 ] || problems+=("the server ran as root")
[ "$health" = 0 ] || problems+=("the HEALTHCHECK command exited $health")
[ "$kiosk_status" = 200 ] && [ -n "${kiosk_csp:-}" ] || problems+=("/kiosk answered $kiosk_status (CSP: ${kiosk_csp:-none})")
[ "$npm_ls" = 0 ] || problems+=("npm ls --omit=dev: $(tail -n 20 "$WORK/npm-ls.log")")
[ "$dev_present" = '[]' ] || problems+=("dev-only packages installed: $dev_present")
[ "$writes" = '[]' ] || problems+=("written outside the data folder: $writes")
[ "$exit_code" = 0 ] || problems+=("$STOP_SIGNAL ended the server with status $exit_code")
[ "$errors" = '[]' ] || problems+=("the server logged errors: $errors")
if [ "${#problems[@]}" -gt 0 ]; then
  printf 'layout: FAILED: %s\n' "${problems[@]}" >&2
  exit 1
fi
log "ok"
