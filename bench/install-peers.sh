#!/usr/bin/env bash
# Installs the peers weft's benchmarks measure against, from Debian's
# packages. Run as root (make bench-peers).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq python3 libboost-context-dev golang-go python3-gevent \
  libst-dev nginx wrk redis-server redis-tools libhiredis-dev python3-redis \
  golang-github-gomodule-redigo-dev golang-golang-x-sync-dev python3-matplotlib
