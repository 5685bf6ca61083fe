#!/bin/sh
# Refreshes requirements.lock: every runtime dependency of pyproject.toml (not the dev extra) and its build
# backend (setuptools, so the project installs with --no-build-isolation from locked files), resolved for
# the image's Python (3.11, Linux) and pinned with the sha256 of every file PyPI has for that version, so
# the image's `pip install --require-hashes -r requirements.lock` installs exactly these bytes.
# Run it from the repository root on Python 3.11 (`make lock`) after changing a dependency; commit the result.
set -eu
python=${PYTHON:-python3}
"$python" -c 'import sys; assert sys.version_info[:2] == (3, 11), "lock on Python 3.11, the image'"'"'s"'
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
"$python" -m venv "$tools"
# Only PyPI: no local wheel folders, mirrors or constraint files of this machine.
export PIP_FIND_LINKS= PIP_EXTRA_INDEX_URL= PIP_CONSTRAINT= PIP_INDEX_URL=https://pypi.org/simple
"$tools/bin/pip" install --quiet 'pip-tools==7.7.0'
"$tools/bin/pip-compile" --quiet --generate-hashes --strip-extras --allow-unsafe --all-build-deps --no-emit-index-url \
  --no-emit-find-links --output-file requirements.lock pyproject.toml
