#!/bin/sh
# Install the Debian packages hangtrace needs to build and to run its tests.
# Idempotent: only calls apt-get when something is missing.
set -eu
pkgs="clang llvm make gcc pkg-config libbpf-dev bpftool libelf-dev zlib1g-dev libjson-c-dev
 python3 python3-pytest python3-pytest-rerunfailures libbpf-tools binutils libclang-rt-14-dev util-linux libcap2-bin
 python3-fastapi python3-uvicorn python3-eventlet python3-gevent python3-uvloop python3-requests
 golang-go python3-jsonschema chromium python3-pil python3-gunicorn
 libmicrohttpd-dev libcurl4-openssl-dev libmicrohttpd12 libcurl4 prometheus python3-prometheus-client"
# libmicrohttpd12 and libcurl4 are dlopen()ed by `hangtrace agent` (user/dynlib.c):
# no ELF dependency says so, hence listed by name (the -dev packages have the headers)
# npm fetches speedscope's file-format schema for the tests (tests/fetch-speedscope.sh);
# a Node.js that ships its own npm (e.g. NodeSource's) is enough
command -v npm >/dev/null 2>&1 || pkgs="$pkgs nodejs npm"
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
