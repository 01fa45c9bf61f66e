#!/usr/bin/env bash
# Runs the OCI runtime-tools validation suite (github.com/opencontainers/
# runtime-tools, validation/) against the real runc and against secrun-runc
# in a permissive, audit-only configuration, in the same run, and fails if
# secrun-runc fails any check that runc passes.
#
# The suite is built from its module (downloaded through the Go module
# proxy, never committed) into bin/conformance/. Needs root.
#
#   scripts/runtime-conformance.sh [TEST...]     # default: every test
#
# Environment: SECRUN_RUNC (default bin/runc), SECRUN_RUNC_WRAPPER (default
# bin/secrun-runc), CONFORMANCE_TIMEOUT (seconds per test, default 120),
# CONFORMANCE_OUT (report directory, default bin/conformance/report).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$PWD"
RTT_MODULE=github.com/opencontainers/runtime-tools
RTT_VERSION=v0.9.1-0.20250303011046-260e151b8552
OUT="$ROOT/bin/conformance"
RUNC="${SECRUN_RUNC:-$ROOT/bin/runc}"
WRAPPER="${SECRUN_RUNC_WRAPPER:-$ROOT/bin/secrun-runc}"
TIMEOUT="${CONFORMANCE_TIMEOUT:-120}"
REPORT="${CONFORMANCE_OUT:-$OUT/report}"

if [ "$(id -u)" -ne 0 ]; then
  echo "conformance: needs root (the suite creates real containers)" >&2
  exit 1
fi
for b in "$RUNC" "$WRAPPER"; do
  [ -x "$b" ] || { echo "conformance: $b is missing: run 'make deps build'" >&2; exit 1; }
done

# Build the suite once per version.
if [ ! -f "$OUT/.built-$RTT_VERSION" ]; then
  echo "conformance: building $RTT_MODULE@$RTT_VERSION into $OUT"
  rm -rf "$OUT"
  mkdir -p "$OUT/tests"
  # go install MODULE/...@VERSION builds in module mode from the proxy, with
  # the suite's own go.mod; nothing is added to secrun's.
  (
    cd /tmp
    export GOFLAGS= GOWORK=off
    CGO_ENABLED=0 GOBIN="$OUT" go install "$RTT_MODULE/cmd/runtimetest@$RTT_VERSION"
    GOBIN="$OUT/tests" go install "$RTT_MODULE/validation/...@$RTT_VERSION"
  )
  src="$(cd /tmp && GOFLAGS= GOWORK=off go mod download -json "$RTT_MODULE@$RTT_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$src" ] || { echo "conformance: could not download $RTT_MODULE@$RTT_VERSION" >&2; exit 1; }
  cp "$src/rootfs-$(go env GOARCH).tar.gz" "$OUT/"
  chmod 0644 "$OUT/rootfs-$(go env GOARCH).tar.gz"
  touch "$OUT/.built-$RTT_VERSION"
fi

# secrun-runc's configuration: the real runc, the baseline policy, audit-only,
# no hardening, its own audit trail.
work="$(mktemp -d /tmp/secrun-conformance.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cat > "$work/runtime.yaml" <<EOF
runtime: $RUNC
policy: baseline
mode: audit-only
auditLog: $work/audit/audit.log
stateDir: $work/state
EOF

tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
  for t in "$OUT"/tests/*; do tests+=("$(basename "$t")"); done
fi

mkdir -p "$REPORT"
rm -f "$REPORT/regressions.txt"
cd "$OUT"
run_one() { # runtime test -> TAP on stdout
  RUNTIME="$1" SECRUN_RUNTIME_CONFIG="$work/runtime.yaml" timeout --kill-after=10 "$TIMEOUT" "./tests/$2" 2>&1 || true
}
# ok/not ok lines, numbered, as "N ok|fail|skip description".
results() {
  sed -n -E 's/^(not ok|ok) ([0-9]+)( - )?(.*)$/\2 \1 \4/p' | sed -E 's/^([0-9]+) not ok /\1 fail /; s/^([0-9]+) ok (.*# ?SKIP.*)$/\1 skip \2/'
}

regressions=0
printf '%-36s %10s %12s\n' test runc secrun-runc | tee "$REPORT/summary.txt"
for t in "${tests[@]}"; do
  # Alternate which runtime goes first so that leftovers of one run do not
  # always hit the same runtime.
  run_one "$RUNC" "$t" > "$REPORT/$t.runc.tap"
  run_one "$WRAPPER" "$t" > "$REPORT/$t.secrun.tap"
  results < "$REPORT/$t.runc.tap" > "$REPORT/$t.runc.res"
  results < "$REPORT/$t.secrun.tap" > "$REPORT/$t.secrun.res"
  rp="$(grep -c ' ok ' "$REPORT/$t.runc.res" || true)"; rt="$(grep -c . "$REPORT/$t.runc.res" || true)"
  sp="$(grep -c ' ok ' "$REPORT/$t.secrun.res" || true)"; st="$(grep -c . "$REPORT/$t.secrun.res" || true)"
  # Every check runc passes must pass under secrun-runc. Checks are matched
  # by description, counted (some tests list map entries in random order).
  missing="$(awk 'FNR == NR { if ($2 == "ok") { $1 = $2 = ""; want[$0]++ }; next }
                  $2 == "ok" { $1 = $2 = ""; got[$0]++ }
                  END { for (d in want) if (got[d] < want[d]) print want[d] - got[d] " x" d }' \
    "$REPORT/$t.runc.res" "$REPORT/$t.secrun.res")"
  mark=""
  if [ -n "$missing" ]; then
    mark="  REGRESSION"
    regressions=$((regressions + 1))
    printf '%s\n' "$missing" | sed "s/^/    $t: /" >> "$REPORT/regressions.txt"
  fi
  printf '%-36s %10s %12s%s\n' "$t" "$rp/$rt" "$sp/$st" "$mark" | tee -a "$REPORT/summary.txt"
done

decisions="$(grep -c '"action":"policy.decision"' "$work/audit/audit.log" 2>/dev/null || true)"
echo "secrun-runc recorded ${decisions:-0} policy decisions (audit-only)" | tee -a "$REPORT/summary.txt"
if [ "$regressions" -gt 0 ]; then
  echo "conformance: secrun-runc fails checks that runc passes in $regressions test(s):" >&2
  cat "$REPORT/regressions.txt" >&2
  exit 1
fi
echo "conformance: secrun-runc passes every check runc passes (${#tests[@]} tests)"
