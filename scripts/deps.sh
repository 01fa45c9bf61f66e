#!/usr/bin/env bash
# Installs what secrun needs to build, run and test, when it is missing:
# Debian packages, the pinned runc (built with seccomp support) and, for the
# signature interoperability tests, the pinned cosign CLI. Idempotent.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN="$PWD/bin"
RUNC_VERSION=v1.5.2
COSIGN_VERSION=v2.6.5
mkdir -p "$BIN"

need_pkgs=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in libseccomp-dev pkg-config busybox-static apparmor uidmap iproute2 docker.io podman containerd ${SECRUN_EXTRA_PKGS:-}; do
  have_pkg "$p" || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing Debian packages: ${need_pkgs[*]}; install them as root (apt-get install ${need_pkgs[*]})" >&2
    exit 1
  fi
  echo "deps: installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

if ! "$BIN/runc" --version 2>/dev/null | grep -q "runc version ${RUNC_VERSION#v}"; then
  echo "deps: building runc $RUNC_VERSION into $BIN"
  GOBIN="$BIN" go install -tags seccomp "github.com/opencontainers/runc@$RUNC_VERSION"
fi

if [ "${SECRUN_NO_COSIGN:-}" != 1 ] && ! "$BIN/cosign" version 2>/dev/null | grep -q "${COSIGN_VERSION#v}"; then
  echo "deps: building cosign $COSIGN_VERSION into $BIN (for signature interoperability tests)"
  GOBIN="$BIN" go install "github.com/sigstore/cosign/v2/cmd/cosign@$COSIGN_VERSION"
fi

go mod download
