#!/usr/bin/env bash
# Installs what tokengate's demo and tests need and is missing: npm packages, the OHIF viewer's
# built app, and (as root, on Debian) redis-server, Orthanc with its DICOMweb plugin, promtool
# (package prometheus) for the metrics test, nginx for the auth_request test and chromium for the browser-viewer test. Not root and something missing: says what to install and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

# npm ci: installs exactly the committed lock file and never rewrites it (npm install would, and
# leave the checkout dirty). Skipped when node_modules already matches the lock.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "install-deps: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

# The OHIF viewer's built dist/ for test/integration/browser-viewer.test.ts, at the version
# package.json's config.ohifApp names, in .cache/. Fetched as one tarball with `npm pack`:
# installing @ohif/app as a package would also pull its source dependencies, some of which (its
# @ohif/i18n) the registry does not carry; the built dist/ needs none of them.
# TOKENGATE_SKIP_BROWSER=1 (the demo) skips it and chromium.
if [ "${TOKENGATE_SKIP_BROWSER:-}" != 1 ]; then
  ohif_version=$(node -p "require('./package.json').config.ohifApp")
  ohif_dir=".cache/ohif-app-$ohif_version"
  if [ ! -f "$ohif_dir/dist/index.html" ]; then
    echo "install-deps: npm pack @ohif/app@$ohif_version into $ohif_dir" >&2
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack "@ohif/app@$ohif_version" --silent --loglevel=error >/dev/null && tar xzf ./*.tgz)
    mkdir -p .cache
    rm -rf "$ohif_dir"
    mv "$tmp/package" "$ohif_dir"
  fi
fi

need_pkgs=()
if [ "${TOKENGATE_SKIP_BROWSER:-}" != 1 ]; then
  [ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
fi
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
{ [ -x /usr/sbin/Orthanc ] || [ -x /usr/bin/Orthanc ]; } || need_pkgs+=(orthanc)
ls /usr/share/orthanc/plugins/libOrthancDicomWeb.so /usr/lib/orthanc/libOrthancDicomWeb.so* >/dev/null 2>&1 || need_pkgs+=(orthanc-dicomweb)
# nginx for the auth_request integration test and the bench's nginx rows (the test skips without it).
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_pkgs+=(nginx-light)
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
