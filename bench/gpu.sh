#!/usr/bin/env bash
# The GPU check (bench/gpu.bench.ts) from a copy of the built tree (node_modules included) on a machine
# whose image may have no Node.js: bring one along as ./node (the `node` binary of the machine that built
# the tree, same OS and CPU architecture), or set NODE=/path/to/node.
#   cp "$(command -v node)" ./node && tar czf lmp.tgz . ; on the GPU machine: tar xzf lmp.tgz && bash bench/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
node="${NODE:-}"
if [ -z "$node" ]; then
  if [ -x ./node ]; then node=./node; else node="$(command -v node || true)"; fi
fi
if [ -z "$node" ]; then
  echo "bench/gpu.sh: no Node.js: copy a node binary to ./node or set NODE" >&2
  exit 1
fi
exec "$node" --import tsx bench/gpu.bench.ts
