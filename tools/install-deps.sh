#!/bin/sh
# Install the Debian packages hangtrace needs to build and to run its tests.
# Idempotent: only calls apt-get when something is missing.
set -eu
pkgs="clang llvm make gcc pkg-config libbpf-dev bpftool libelf-dev zlib1g-dev libjson-c-dev
 python3 python3-pytest libbpf-tools binutils util-linux libcap2-bin
 python3-fastapi python3-uvicorn python3-eventlet python3-gevent python3-uvloop python3-requests"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
