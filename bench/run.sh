#!/usr/bin/env bash
# The benchmark (issue 9): builds the gateway and the harness in Release, then runs the suite from the repository root.
# Extra arguments go to the suite, e.g. bash bench/run.sh --models mlp --concurrency 1,16 --window 1
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build -c Release src/Gateway -v q -nologo
if [[ " $* " == *" --cluster true "* ]]; then
  dotnet build -c Release src/Silo -v q -nologo
  dotnet build -c Release tests/Carml.Orleans.ConsulEmulator -v q -nologo
fi
dotnet build -c Release bench/Carml.Orleans.Bench -v q -nologo
exec dotnet bench/Carml.Orleans.Bench/bin/Release/net10.0/Carml.Orleans.Bench.dll suite "$@"
