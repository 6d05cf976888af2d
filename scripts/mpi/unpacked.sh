#!/usr/bin/env bash
# Open MPI for a machine where it cannot be installed (no network, no package manager use,
# e.g. the lent GPU machine): Debian's packages, downloaded where there is network with
#   mkdir -p .mpi/debs && (cd .mpi/debs && apt-get download openmpi-bin libopenmpi3 \
#     openmpi-common libpmix2 libhwloc15 libevent-core-2.1-7 libevent-pthreads-2.1-7 \
#     libfabric1 libucx0 libibverbs1 librdmacm1 libnl-3-200 libnl-route-3-200 libnuma1 \
#     libpsm-infinipath1 libpsm2-2 libmunge2 libudev1 libltdl7 ibverbs-providers libuuid1)
# are unpacked into PREFIX (never into /), and Open MPI is pointed there with its OPAL_*
# relocation variables. Source it:  . scripts/mpi/unpacked.sh .mpi/debs /tmp/ompi
# The machine's own libraries come first on the library path; the unpacked ones only fill
# what it lacks.
debs="${1:?usage: . unpacked.sh DEBS_DIR PREFIX}"
prefix="${2:?usage: . unpacked.sh DEBS_DIR PREFIX}"
mkdir -p "$prefix"
for f in "$debs"/*.deb; do dpkg-deb -x "$f" "$prefix"; done
arch=x86_64-linux-gnu
ompi="$prefix/usr/lib/$arch/openmpi"
export OPAL_PREFIX="$prefix/usr"
export OPAL_EXEC_PREFIX="$prefix/usr"
export OPAL_BINDIR="$prefix/usr/bin"
export OPAL_LIBDIR="$ompi/lib"
export OPAL_PKGLIBDIR="$ompi/lib/openmpi3"
export OPAL_DATADIR="$prefix/usr/share"
export OPAL_DATAROOTDIR="$prefix/usr/share"
export OPAL_PKGDATADIR="$prefix/usr/share/openmpi"
export OPAL_SYSCONFDIR="$prefix/etc/openmpi"
export OPAL_INCLUDEDIR="$ompi/include"
export PMIX_INSTALL_PREFIX="$prefix/usr/lib/$arch/pmix2"
export PATH="$prefix/usr/bin:$PATH"
export LD_LIBRARY_PATH="/lib/$arch:/usr/lib/$arch:$ompi/lib:$prefix/usr/lib/$arch:$prefix/lib/$arch:$prefix/usr/lib/$arch/pmix2/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
