#!/usr/bin/env bash
# Installs what tokengate's demo and tests need and is missing: npm packages, and (as root, on
# Debian) redis-server, Orthanc with its DICOMweb plugin, and promtool (package prometheus) for the
# metrics test. Not root and something missing: says what to install and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

# npm ci: installs exactly the committed lock file and never rewrites it (npm install would, and
# leave the checkout dirty). Skipped when node_modules already matches the lock.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "install-deps: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

need_pkgs=()
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
{ [ -x /usr/sbin/Orthanc ] || [ -x /usr/bin/Orthanc ]; } || need_pkgs+=(orthanc)
ls /usr/share/orthanc/plugins/libOrthancDicomWeb.so /usr/lib/orthanc/libOrthancDicomWeb.so* >/dev/null 2>&1 || need_pkgs+=(orthanc-dicomweb)
if [ "${TOKENGATE_SKIP_PROMTOOL:-}" != 1 ]; then
  command -v promtool >/dev/null 2>&1 || need_pkgs+=(prometheus)
fi

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: apt-get install ${need_pkgs[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # Package post-install scripts may try to start services; we start our own on free ports.
    apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/dev/null 2>&1 || {
      apt-get update >/dev/null 2>&1
      apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/dev/null
    }
  else
    echo "install-deps: missing Debian packages: ${need_pkgs[*]}" >&2
    echo "install-deps: run as root, or: sudo apt-get install ${need_pkgs[*]}" >&2
    exit 1
  fi
fi
