#!/usr/bin/env bash
# Installs what `--features mpi` builds and runs with, if missing: Open MPI (mpirun and the
# headers rsmpi binds to), libclang (rsmpi's bindgen) and iproute2 (the namespace test).
# Debian packages; needs root.
set -euo pipefail
need=()
command -v mpirun >/dev/null || need+=(openmpi-bin)
command -v mpicc >/dev/null || need+=(libopenmpi-dev)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need+=(libclang-dev)
command -v ip >/dev/null || need+=(iproute2) # network namespaces: tests/mpi.rs, netns.sh
if [[ ${#need[@]} -gt 0 ]]; then
    echo "scripts/mpi/setup.sh: installing ${need[*]}" >&2
    if [[ $(id -u) -ne 0 ]]; then
        echo "scripts/mpi/setup.sh: missing ${need[*]}, and not root to install them" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${need[@]}" >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null; }
fi
mpirun --version | head -1
