#!/usr/bin/env bash
# Installs weft into a scratch prefix, then builds and runs a consumer with
# pkg-config and with CMake's find_package, against both libraries.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
make -C "$top" install PREFIX="$prefix" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; exit 1; }
libdir=$(ls -d "$prefix"/lib*/pkgconfig | head -1 | xargs dirname)
test -e "$libdir/libweft.so.0" || { echo "no SONAME link libweft.so.0"; exit 1; }
test -e "$libdir/libweft.a" || { echo "no libweft.a"; exit 1; }

export PKG_CONFIG_PATH=$libdir/pkgconfig
cc -o "$work/pc" "$top/tests/install/consumer.c" $(pkg-config --cflags --libs weft)
LD_LIBRARY_PATH=$libdir "$work/pc"
test -e "$libdir/libweft-hook.so.0" || { echo "no SONAME link libweft-hook.so.0"; exit 1; }
cc -o "$work/pc-hook" "$top/tests/install/hook-consumer.c" \
  $(pkg-config --cflags --libs weft weft-hook)
LD_LIBRARY_PATH=$libdir "$work/pc-hook"

cmake -S "$top/tests/install" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/build" >/dev/null
LD_LIBRARY_PATH=$libdir "$work/build/consumer-shared"
"$work/build/consumer-static"
LD_LIBRARY_PATH=$libdir "$work/build/consumer-hook"
echo "install: pkg-config and find_package consumers ran"
