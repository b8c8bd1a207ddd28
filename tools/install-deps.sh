#!/usr/bin/env bash
# Install everything gradguard needs to build, test and run its demo on
# Debian 12 (as root, or with sudo). Idempotent; safe to run again.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PKGS=(
  build-essential cmake pkg-config
  libopenmpi-dev openmpi-bin
  libhdf5-dev hdf5-tools
  libopenblas-dev liblapacke-dev
  check libsubunit-dev
  libinih-dev zlib1g-dev libcairo2-dev fonts-dejavu-core
  dataset-fashion-mnist
  python3-torch python3-h5py python3-numpy
  slurmctld slurmd slurm-client munge
  iproute2 util-linux procps
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi
