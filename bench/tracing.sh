#!/usr/bin/env bash
# Issue 7's closing figure: requests/s on the Iris sample at trace level none vs full, with no exporter and with an
# OTLP exporter (to a sink inside the harness). Builds in Release, runs from the repository root, writes
# bench/results/tracing.md. Extra arguments go to the harness, e.g. bash bench/tracing.sh --concurrency 4 --windows 3
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build -c Release src/Gateway -v q -nologo
dotnet build -c Release bench/Carml.Orleans.Bench -v q -nologo
exec dotnet bench/Carml.Orleans.Bench/bin/Release/net10.0/Carml.Orleans.Bench.dll tracing "$@"
