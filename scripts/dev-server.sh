#!/bin/sh
# README command 1: install what is missing, build, and start a dev server
# (initialized, unsealed) on 127.0.0.1:7200.  Ctrl-C stops it.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "custos built: CLI at $(pwd)/build/custos"
exec ./build/custosd --dev "$@"
