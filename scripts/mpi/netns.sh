#!/usr/bin/env bash
# MPI ranks on "hosts" that are network namespaces of this machine: the cross-host path
# (TCP between separate network stacks, remote launch) without a second machine.
#
#   scripts/mpi/netns.sh up [N]          N namespaces mpda-n1..N (default 2) on a bridge,
#                                        10.77.0.11.. ; the launcher side is 10.77.0.1
#   scripts/mpi/netns.sh run N CMD...    mpirun -n N over those hosts, one rank each, TCP only
#   scripts/mpi/netns.sh down            removes the namespaces, the bridge and the map
#
# Open MPI launches into a namespace through scripts/mpi/netns-rsh (in place of ssh), and
# both its out-of-band channel and its byte transfer layer are kept on 10.77.0.0/24, so
# ranks really talk over the veth pairs. `--bind-to none`: each namespace's daemon thinks it
# has a machine of its own and would bind its rank to core 0, the same core for all.
# Needs root and iproute2.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir=/run/mpda-netns
map="$dir/hosts"
net=10.77.0
bridge=mpdabr0

up() {
    local n="${1:-2}"
    down >/dev/null 2>&1 || true
    mkdir -p "$dir"
    : >"$map"
    : >"$dir/hostfile"
    ip link add "$bridge" type bridge
    ip addr add "$net.1/24" dev "$bridge"
    ip link set "$bridge" up
    for i in $(seq 1 "$n"); do
        local ns="mpda-n$i" addr="$net.$((10 + i))"
        ip netns add "$ns"
        ip link add "veth-n$i" type veth peer name eth0 netns "$ns"
        ip link set "veth-n$i" master "$bridge"
        ip link set "veth-n$i" up
        ip -n "$ns" addr add "$addr/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
        echo "$addr $ns" >>"$map"
        echo "$addr slots=1" >>"$dir/hostfile"
    done
    echo "netns: $n hosts: $(awk '{printf "%s ", $1}' "$map")"
}

down() {
    if [[ -f "$map" ]]; then
        awk '{print $2}' "$map" | while read -r ns; do ip netns del "$ns" 2>/dev/null || true; done
    fi
    ip link del "$bridge" 2>/dev/null || true
    rm -rf "$dir"
}

run() {
    local n="${1:?run N CMD...}"
    shift
    [[ -f "$dir/hostfile" ]] || { echo "netns: no hosts; run '$0 up' first" >&2; exit 1; }
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    export MPDA_NETNS_MAP="$map"
    exec mpirun -n "$n" --hostfile "$dir/hostfile" \
        --mca plm_rsh_agent "$here/netns-rsh" --mca rtc_hwloc_vmhole none --bind-to none \
        --mca oob_tcp_if_include "$net.0/24" \
        --mca btl tcp,self --mca btl_tcp_if_include "$net.0/24" \
        "$@"
}

case "${1:-}" in
up) shift; up "$@" ;;
down) down ;;
run) shift; run "$@" ;;
*) echo "usage: $0 up [N] | run N CMD... | down" >&2; exit 2 ;;
esac
