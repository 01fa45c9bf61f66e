#!/usr/bin/env bash
# The main job end to end on this machine: build an image without a registry,
# sign it, run it under the default-deny policy, watch an unsigned image and a
# privileged request be refused, then check the audit trail. Needs root
# (containers get their own user namespace and cgroups).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/bin"
DEMO="$PWD/.demo"
rm -rf "$DEMO"; mkdir -p "$DEMO"
chmod 0711 "$DEMO"
export SECRUN_ROOT="$DEMO/root" COSIGN_PASSWORD=demo
secrun() { "$BIN/secrun" "$@"; }
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { step "$*"; "$@"; }
expect_fail() { step "$*"; set +e; "$@"; local rc=$?; set -e; echo "(exit status $rc)"; [ "$rc" -ne 0 ]; }

go run ./scripts/mkimage -o "$DEMO/layout" -tag app -user 1000
go run ./scripts/mkimage -format docker-archive -o "$DEMO/unsigned.tar" -tag unsigned:latest -user 1000
cd "$DEMO"
cat > trust.yaml <<'YAML'
rules:
- images: ["oci:**"]
  keys: [cosign.pub]
  insecureIgnoreTlog: true   # no transparency log is reachable here
YAML
export SECRUN_TRUST="$DEMO/trust.yaml"

run secrun generate-key-pair
run secrun image import "oci:$DEMO/layout:app"
run secrun image ls
run secrun sign --key cosign.key "oci:$DEMO/layout:app"
run secrun verify --key cosign.pub "oci:$DEMO/layout:app"

run secrun run --rm "oci:$DEMO/layout:app" sh -c \
  'id; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status; echo "uid_map: $(cat /proc/self/uid_map)"; echo "interfaces: $(ls /sys/class/net)"; touch /etc/x; unshare -U true; exit 0'
expect_fail secrun run --rm "docker-archive:$DEMO/unsigned.tar" true
expect_fail secrun run --rm -v /etc:/host-etc "oci:$DEMO/layout:app" true
expect_fail secrun run --rm --cap-add SYS_ADMIN "oci:$DEMO/layout:app" true
step 'secrun run --rm ... sh -c "exit 42"'; set +e; secrun run --rm "oci:$DEMO/layout:app" sh -c 'exit 42'; echo "(exit status $?)"; set -e

run secrun policy explain
run secrun audit log show
run secrun audit log verify
printf '\ndemo: done (state in %s)\n' "$DEMO"
