#!/usr/bin/env bash
# tritonclient_check.sh: is oip wire-compatible with NVIDIA's own client?
#
# Run from the repository root (CI does: bash tests/interop/tritonclient_check.sh).
#
# 1. Makes (or reuses) a virtualenv on the host's python3 with the pinned,
#    hash-checked tests/interop/requirements-tritonclient.txt, under
#    ${OIP_CACHE_DIR:-/var/cache/oip}/venvs/tritonclient-<hash of that file>.
#    It is built beside its final place and moved there only when complete,
#    so an interrupted run leaves nothing half-made.
# 2. Compiles proto/*.proto with that venv's grpc_tools.protoc and compares
#    the descriptors with tritonclient's own (compare_descriptors.py).
# 3. Starts the reference server (./bazelw run //python/oip/server) on a free
#    loopback port and runs tritonclient_check.py against it; the server's
#    whole process group is stopped on exit, however the script ends.
#
# Prints PASS/FAIL per check, then `N passed, M failed`; exits 1 on any failure.
#
# Environment: OIP_CACHE_DIR (default /var/cache/oip), OIP_SERVER_TIMEOUT
# (seconds to wait for the server, default 300: a cold build may be needed),
# OIP_PYTHON (the host interpreter, default python3).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
readonly HERE=tests/interop
readonly REQUIREMENTS="${HERE}/requirements-tritonclient.txt"
readonly CACHE_DIR="${OIP_CACHE_DIR:-/var/cache/oip}"
readonly SERVER_TIMEOUT="${OIP_SERVER_TIMEOUT:-300}"
readonly HOST_PYTHON="${OIP_PYTHON:-python3}"
readonly CLIENT_TIMEOUT=300  # seconds for the whole tritonclient_check.py run

# gRPC honours proxy variables even for loopback addresses.
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
readonly NO_PROXY_ENV=(env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY
                       -u all_proxy -u ALL_PROXY -u grpc_proxy -u GRPC_PROXY)

passed=0
failed=0
summarized=""
server_pid=""
staging=""
tmp="$(mktemp -d "${TMPDIR:-/tmp}/oip-tritonclient.XXXXXX")"

pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

summary() {
  summarized=1
  echo "${passed} passed, ${failed} failed"
}

# The state letter of process $1 from /proc ('' when it is gone).
proc_state() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  stat="${stat##*) }"
  echo "${stat%% *}"
}

# Whether process $1 runs (a zombie does not).
alive() {
  local state
  state="$(proc_state "$1")"
  [[ -n "${state}" && "${state}" != Z && "${state}" != X ]]
}

# The process group of process $1 from /proc ('' when it is gone).
pgrp_of() {
  local stat state ppid pgrp
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  read -r state ppid pgrp _ <<<"${stat##*) }"
  echo "${pgrp}"
}

# Whether any process of process group $1 runs.
group_alive() {
  local stat rest state pgrp
  for stat in /proc/[0-9]*/stat; do
    rest="$(cat "${stat}" 2>/dev/null)" || continue
    rest="${rest##*) }"            # state ppid pgrp ...
    read -r state _ pgrp _ <<<"${rest}"
    if [[ "${pgrp}" == "$1" && "${state}" != Z && "${state}" != X ]]; then
      return 0
    fi
  done
  return 1
}

stop_server() {
  [[ -n "${server_pid}" ]] || return 0
  local pgid="" i
  # The server runs in its own session, so its process group id is the id of
  # the process that setsid made leader; it wrote that id to $tmp/pgid.
  for i in {1..20}; do
    [[ -s "${tmp}/pgid" ]] && break
    alive "${server_pid}" || break
    sleep 0.1
  done
  pgid="$(cat "${tmp}/pgid" 2>/dev/null || true)"
  if [[ "${pgid}" =~ ^[0-9]+$ && "${pgid}" != "$(pgrp_of $$)" ]]; then
    kill -TERM -- "-${pgid}" 2>/dev/null || true
    for i in {1..150}; do
      group_alive "${pgid}" || break
      sleep 0.1
    done
    kill -KILL -- "-${pgid}" 2>/dev/null || true
  else
    kill -KILL "${server_pid}" 2>/dev/null || true
  fi
  wait "${server_pid}" 2>/dev/null || true
  server_pid=""
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_server
  [[ -n "${staging}" ]] && rm -rf "${staging}"
  rm -rf "${tmp}"
  if [[ -z "${summarized}" ]]; then
    fail "script: stopped early (exit ${rc})"
    summary
    [[ ${rc} -ne 0 ]] || rc=1
  fi
  exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. the virtualenv ---------------------------------------------------------------

# Debian's python3 makes venvs only with python3-venv; a fresh machine may lack both.
install_host_python() {
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
    echo "need ${HOST_PYTHON} with its venv module (Debian: apt-get install python3 python3-venv)" >&2
    return 1
  fi
  echo "installing python3 and python3-venv from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || return 1
  apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null || return 1
}

venv_works() {
  [[ -f "$1/.complete" ]] && "$1/bin/python" -c \
    'import tritonclient.grpc, grpc_tools.protoc, grpc_health.v1.health_pb2' 2>/dev/null
}

# Errors are checked by hand: `set -e` does not act inside a function called as a condition.
make_venv() {
  local venv="$1" root
  root="$(dirname "${venv}")"
  mkdir -p "${root}" || return 1
  # Leftovers of runs that were killed outright (no trap ran) long ago.
  find "${root}" -maxdepth 1 -name '.partial-*' -mmin +120 -exec rm -rf {} + 2>/dev/null || true
  staging="$(mktemp -d "${root}/.partial-$(basename "${venv}").XXXXXX")" || return 1
  if ! command -v "${HOST_PYTHON}" >/dev/null || ! "${HOST_PYTHON}" -m venv "${staging}/venv" >/dev/null 2>&1; then
    rm -rf "${staging:?}/venv"
    install_host_python || return 1
    "${HOST_PYTHON}" -m venv "${staging}/venv" || return 1
  fi
  # Only `bin/python -m ...` is used, so the venv works after the move even
  # though its console scripts name the staging path.
  "${staging}/venv/bin/python" -m pip install --quiet --no-input --disable-pip-version-check \
    --require-hashes --only-binary :all: -r "${REQUIREMENTS}" || return 1
  "${staging}/venv/bin/python" -m pip check >/dev/null || return 1
  touch "${staging}/venv/.complete" || return 1
  venv_works "${venv}" || rm -rf "${venv}"  # a broken one, unless another run just made it
  # Another run may have won the race to the same name: then use its copy.
  mv -T "${staging}/venv" "${venv}" 2>/dev/null || true
  rm -rf "${staging}"
  staging=""
  venv_works "${venv}"
}

started="$(now)"
hash="$(sha256sum "${REQUIREMENTS}" | cut -c1-16)"
venv="${CACHE_DIR}/venvs/tritonclient-${hash}"
if venv_works "${venv}"; then
  pass "venv: reused ${venv} ($(since "${started}"))"
elif make_venv "${venv}"; then
  pass "venv: built ${venv} ($(since "${started}"))"
else
  fail "venv: could not build ${venv} from ${REQUIREMENTS}"
  summary
  exit 1
fi
py="${venv}/bin/python"
echo "tritonclient $("${py}" -c 'from importlib.metadata import version as v; print(v("tritonclient"), "grpcio", v("grpcio"), "protobuf", v("protobuf"))')"

# --- 2. descriptor comparison --------------------------------------------------------------

started="$(now)"
mkdir -p "${tmp}/protos/oip/protocol"
cp proto/*.proto "${tmp}/protos/oip/protocol/"
if "${py}" -m grpc_tools.protoc -I "${tmp}/protos" --include_imports \
      --descriptor_set_out="${tmp}/oip.pb" "${tmp}"/protos/oip/protocol/*.proto \
    && "${py}" "${HERE}/compare_descriptors.py" --descriptor-set "${tmp}/oip.pb"; then
  pass "descriptors: proto/*.proto match tritonclient's ($(since "${started}"))"
else
  fail "descriptors: proto/*.proto differ from tritonclient's (see above)"
fi

# oip itself, importable by the venv's Python: its sources plus the protocol
# modules Bazel generates.
stage_oip() {
  local stage="$1" generated
  ./bazelw build //python/oip/protocol:all >"${tmp}/build.log" 2>&1 || {
    tail -n 20 "${tmp}/build.log"; return 1; }
  generated="$(./bazelw info bazel-bin 2>/dev/null)/python/oip/protocol"
  mkdir -p "${stage}/oip/protocol"
  cp python/oip/*.py python/oip/py.typed "${stage}/oip/"
  cp python/oip/protocol/__init__.py "${generated}"/*_pb2*.py "${stage}/oip/protocol/"
}

# --- 3. the reference server and the tritonclient calls ------------------------------------

started="$(now)"
echo "starting the reference server (./bazelw run //python/oip/server; a cold build may take minutes)"
setsid -w bash -c 'echo $$ >"$0"; exec "$@"' "${tmp}/pgid" \
  ./bazelw run //python/oip/server -- --grpc-port 0 --port-file "${tmp}/port" \
  </dev/null >"${tmp}/server.log" 2>&1 &
server_pid=$!

port=""
deadline=$(( $(date +%s) + SERVER_TIMEOUT ))
while :; do
  if [[ -s "${tmp}/port" ]]; then
    port="$(tr -d '[:space:]' <"${tmp}/port")"
    break
  fi
  if ! alive "${server_pid}"; then
    echo "the server exited before serving" >&2
    break
  fi
  if (( $(date +%s) >= deadline )); then
    echo "no port file after ${SERVER_TIMEOUT} s" >&2
    break
  fi
  sleep 0.5
done

if [[ "${port}" =~ ^[0-9]+$ ]]; then
  pass "server: serving on 127.0.0.1:${port} ($(since "${started}"))"
  echo "tritonclient.grpc calls against 127.0.0.1:${port}:"
  started="$(now)"
  set +e
  "${NO_PROXY_ENV[@]}" timeout --kill-after=10 "${CLIENT_TIMEOUT}" \
    "${py}" "${HERE}/tritonclient_check.py" --url "127.0.0.1:${port}" | tee "${tmp}/client.out"
  rc=${PIPESTATUS[0]}
  set -e
  client_passed="$(grep -c '^PASS ' "${tmp}/client.out" || true)"
  client_failed="$(grep -c '^FAIL ' "${tmp}/client.out" || true)"
  passed=$((passed + client_passed))
  failed=$((failed + client_failed))
  if [[ ${rc} -ne 0 && ${client_failed} -eq 0 ]]; then
    fail "tritonclient_check.py exited ${rc}"
  elif [[ ${rc} -eq 0 && ${client_passed} -eq 0 ]]; then
    fail "tritonclient_check.py ran no check"
  fi
  echo "tritonclient calls took $(since "${started}")"

  # oip and tritonclient side by side on this server: ratios, no assertion.
  started="$(now)"
  if stage_oip "${tmp}/stage" && "${NO_PROXY_ENV[@]}" \
      timeout --kill-after=10 "${CLIENT_TIMEOUT}" \
      "${py}" tests/bench/grpc_bench.py --url "127.0.0.1:${port}" --oip-path "${tmp}/stage"; then
    pass "bench: oip and tritonclient compared ($(since "${started}"))"
  else
    fail "bench: did not complete"
  fi
  if ! alive "${server_pid}"; then
    fail "server: it exited during the calls"
  fi
  if (( failed )); then
    echo "--- server log (last 40 lines) ---"
    tail -n 40 "${tmp}/server.log"
  fi
else
  fail "server: did not start ($(since "${started}")); its log (last 80 lines):"
  tail -n 80 "${tmp}/server.log" | sed 's/^/  | /'
  fail "tritonclient calls: not run, no server"
fi

stop_server
summary
(( failed == 0 ))
