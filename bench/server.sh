#!/bin/bash
# Load benchmark of mender-server, on SQLite and then on PostgreSQL: seeds accepted devices
# through the real API, then many keep-alive connections poll `next` (with one inventory PUT in
# every N requests) for a fixed time; prints req/s, p50/p99 latency, errors and the server's
# RSS for each. The load generator (and PostgreSQL) share the machine with the server, so
# numbers are a floor. Not a test.
# Usage: bench/server.sh [DEVICES] [SECONDS] [CONNECTIONS]   (defaults 100000 20 32)
# BENCH_DATABASES="sqlite postgres" picks the backends; PostgreSQL is reached as the tests
# reach it (MENDER_TEST_POSTGRES, see tests/all/server_pg.rs; scripts/test sets it up).
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_DEVICES=${1:-100000} BENCH_SECONDS=${2:-20} BENCH_CONNECTIONS=${3:-32}
export BENCH_INVENTORY_EVERY=${BENCH_INVENTORY_EVERY:-10}
for db in ${BENCH_DATABASES:-sqlite postgres}; do
  BENCH_DATABASE=$db cargo test --release -j2 --test all server::bench::load -- --ignored \
    --nocapture --test-threads=1 2>&1 \
    | grep -E '^(database|seeded|load|next|inventory|errors|server)|panicked|test result'
done
