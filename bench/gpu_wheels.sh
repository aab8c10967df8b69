#!/usr/bin/env bash
# The wheels the GPU machine lacks (it has torch, transformers, numpy, pillow, opencv, scipy), for
# its Python 3.12, into .whl/ (ignored by git; carried to the machine by the device tool's `carry`).
# Then, on the machine:
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:.
#   PYTHONUNBUFFERED=1 python3 bench/mllm_throughput.py --model qwen2-vl-2b
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
PY=${PY:-.venv/bin/python}
platforms=()
for n in 17 24 27 28 31 34; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" --platform manylinux2014_x86_64 -d .whl \
  "xgrammar==$($PY -c 'import importlib.metadata as m; print(m.version("xgrammar"))')" \
  "apache-tvm-ffi==$($PY -c 'import importlib.metadata as m; print(m.version("apache-tvm-ffi"))')" \
  "pydantic==$($PY -c 'import pydantic; print(pydantic.VERSION)')" \
  "pydantic-core==$($PY -c 'import pydantic_core; print(pydantic_core.__version__)')" \
  "pydantic-settings==$($PY -c 'import importlib.metadata as m; print(m.version("pydantic-settings"))')" \
  annotated-types typing-inspection python-dotenv json-repair imagehash pywavelets pi-heif
ls -la .whl
du -sh .whl
