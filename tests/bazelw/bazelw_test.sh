#!/usr/bin/env bash
# bazelw's choices that can be checked without provisioning anything.
set -euo pipefail

bazelw="$(pwd)/bazelw"
[[ -x "${bazelw}" ]] || { echo "FAIL: bazelw not found at ${bazelw}"; exit 1; }
failures=0
fake_bin="${TEST_TMPDIR}/bin"
mkdir -p "${fake_bin}"

check() {
  local name="$1" ok="$2"
  if [[ "${ok}" == yes ]]; then echo "PASS ${name}"; else echo "FAIL ${name}"; failures=$((failures + 1)); fi
}

# A Bazel on PATH is run as it is, with the arguments untouched.
cat >"${fake_bin}/bazel" <<'FAKE'
#!/bin/sh
echo "fake bazel called with: $*"
FAKE
chmod +x "${fake_bin}/bazel"
out="$(PATH="${fake_bin}:/usr/bin:/bin" "${bazelw}" test //some:target 2>&1)"
check "uses the bazel on PATH" "$([[ "${out}" == "fake bazel called with: test //some:target" ]] && echo yes || echo no)"

# Bazelisk is preferred over bazel.
cat >"${fake_bin}/bazelisk" <<'FAKE'
#!/bin/sh
echo "fake bazelisk"
FAKE
chmod +x "${fake_bin}/bazelisk"
out="$(PATH="${fake_bin}:/usr/bin:/bin" "${bazelw}" version 2>&1)"
check "prefers bazelisk" "$([[ "${out}" == "fake bazelisk" ]] && echo yes || echo no)"

# No Bazel and provisioning ruled out: non-zero, and it says how to install.
# (Tests run where /usr/bin has a bazel, so PATH gets everything else.)
no_bazel="${TEST_TMPDIR}/no-bazel"
mkdir -p "${no_bazel}"
for tool in /usr/bin/* /bin/*; do
  case "$(basename "${tool}")" in bazel*) continue ;; esac
  ln -sf "${tool}" "${no_bazel}/$(basename "${tool}")"
done
set +e
out="$(PATH="${no_bazel}" OIP_BAZELW_MODE=system "${bazelw}" version 2>&1)"
status=$?
set -e
check "exits non-zero without bazel" "$([[ ${status} -ne 0 ]] && echo yes || echo no)"
check "says how to install bazel" "$([[ "${out}" == *"Install Bazelisk"* ]] && echo yes || echo no)"

echo "$((4 - failures)) passed, ${failures} failed"
[[ ${failures} -eq 0 ]]
