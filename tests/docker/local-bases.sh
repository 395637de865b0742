#!/usr/bin/env bash
# Makes, from Debian 12's packages, the base images that tests/docker.rs builds and runs the
# image on, where no image registry can be reached:
#
#   RUNTIME_TAG  stands in for gcr.io/distroless/cc-debian12:nonroot. Made the way distroless
#                is: the files of the same Debian packages (no maintainer scripts run, so no
#                shell and no package manager), a CA bundle, passwd/group with root, nobody
#                and nonroot (65532), USER 65532:65532 and WORKDIR /home/nonroot.
#   PYTHON_TAG   stands in for python:3.12-slim in deploy/docker-compose.yml: a minimal
#                Debian with python3 (3.11), `python` on PATH, made with mmdebstrap.
#
# An image that already exists is kept: tags carry a hash of this file, so a change here
# makes new ones. Needs root, apt-get, dpkg-deb, mmdebstrap, and a Docker engine.
#
#   tests/docker/local-bases.sh RUNTIME_TAG PYTHON_TAG     (DOCKER: the CLI to use)
set -euo pipefail

runtime_tag="$1"
python_tag="$2"
docker="${DOCKER:-docker}"

# What cc-debian12 holds: base-debian12 (base-files, netbase, tzdata, ca-certificates, glibc,
# OpenSSL) plus the GCC runtime libraries.
runtime_packages=(base-files netbase tzdata ca-certificates libc6 libssl3
  libgcc-s1 libgomp1 libstdc++6)

have() { "$docker" image inspect "$1" >/dev/null 2>&1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if ! have "$runtime_tag"; then
  mkdir -p "$work/debs" "$work/root"
  download() {
    (cd "$work/debs" && apt-get download -q -o APT::Sandbox::User=root "${runtime_packages[@]}")
  }
  # A machine that never ran `apt-get update` has no package lists yet.
  download >/dev/null || { apt-get update -q >/dev/null && download >/dev/null; }
  for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$work/root"
  done
  root="$work/root"
  cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
  cat >"$root/etc/group" <<'GROUP'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
GROUP
  # What update-ca-certificates would write: every certificate the package ships, in one file.
  mkdir -p "$root/etc/ssl/certs"
  cat "$root"/usr/share/ca-certificates/mozilla/*.crt >"$root/etc/ssl/certs/ca-certificates.crt"
  install -d -m 0700 -o 65532 -g 65532 "$root/home/nonroot"
  install -d -m 1777 "$root/tmp"
  tar -C "$root" --numeric-owner -c . | "$docker" import \
    --change 'USER 65532:65532' \
    --change 'WORKDIR /home/nonroot' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    - "$runtime_tag" >/dev/null
  echo "made $runtime_tag" >&2
fi

if ! have "$python_tag"; then
  mmdebstrap --quiet --variant=minbase --include=python3,python-is-python3 \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "$work/python.tar"
  "$docker" import --change 'CMD ["python3"]' "$work/python.tar" "$python_tag" >/dev/null
  echo "made $python_tag" >&2
fi
