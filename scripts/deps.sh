#!/bin/sh
# Install the Debian packages kvsplit builds, tests and demos with, if any is
# missing. Quiet and quick when everything is already there, so every make
# target can depend on it. nghttp2-proxy (nghttpx) is for tests only: an
# HTTP/2 TLS front for kapi-server (docs/test-server.md); tinyproxy and
# microsocks are the HTTP and SOCKS5 proxies of the proxy tests;
# python3-prometheus-client parses the controller's metrics endpoint in a test;
# python3-protobuf (Google's protobuf) decodes kapi-server's Kubernetes
# protobuf answers in tests/fidelity/k8s_protobuf_check.py, independently of
# the project's own reader;
# spin checks the protocol model (tests/model/). The fuzz targets (make
# fuzz-build, fuzz-smoke, fuzz) add clang and libclang-rt-14-dev (libFuzzer)
# through KVS_EXTRA_PKGS.
set -e
# Debian package builds take their build dependencies from debian/control.
[ -n "${KVS_NO_DEPS:-}" ] && exit 0
PKGS="build-essential pkg-config libcurl4-openssl-dev libssl-dev libmsgpack-dev \
liblz4-dev libxxhash-dev libcjson-dev libcriterion-dev libyaml-dev \
libmicrohttpd-dev libgnutls28-dev openssl python3 python3-kubernetes lz4 ca-certificates \
nghttp2-proxy tinyproxy microsocks python3-prometheus-client python3-protobuf spin"
[ -n "$KVS_EXTRA_PKGS" ] && PKGS="$PKGS $KVS_EXTRA_PKGS"
missing=""
for p in $PKGS; do
	s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$s" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
if [ "$(id -u)" != 0 ]; then
	echo "deps: not root; run: sudo apt-get install -y$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2 || true
apt-get install -y -qq --no-install-recommends $missing >&2
