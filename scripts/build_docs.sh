#!/usr/bin/env bash
# Build the documentation site into docs/_build/html with warnings as errors.
# MathJax 3 is installed from npm into the git-ignored docs/_build/node_modules (once) and
# its self-contained tex-svg.js is served from the site, so maths render offline.
# Usage: bash scripts/build_docs.sh [extra sphinx-build options]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=docs/_build
mkdir -p "$BUILD/mathjax"
if [ ! -f "$BUILD/node_modules/mathjax/es5/tex-svg.js" ]; then
    npm install --prefix "$BUILD" --no-audit --no-fund --no-save --silent mathjax@3
fi
cp "$BUILD/node_modules/mathjax/es5/tex-svg.js" "$BUILD/mathjax/tex-svg.js"
export MPLBACKEND=Agg PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)
python -m sphinx -W --keep-going -b html -q docs "$BUILD/html" "$@"
echo "built $BUILD/html/index.html in $(( $(date +%s) - start )) s"
