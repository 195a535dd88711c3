#!/bin/sh
# Install the botqueue worker into a new virtualenv: the package and its runtime dependencies,
# nothing from the dev extras. deploy/Dockerfile runs it, docs/deploy.md runs it for systemd
# hosts, and tests/deploy/test_install.py runs it against the Bot API sandbox.
#
#   deploy/install.sh PREFIX [SOURCE [MORE...]]
#
# PREFIX   where the virtualenv goes, e.g. /opt/botqueue (it must not exist yet: a running
#          worker's files are never replaced under it; install beside it and switch)
# SOURCE   the project directory or a built wheel (default: .); "SOURCE[redis]" adds an extra
# MORE     further requirements installed with it, e.g. the package of your own --service
#
# PYTHON chooses the interpreter (default python3, >= 3.11). pip's own settings (PIP_INDEX_URL,
# PIP_NO_CACHE_DIR, ...) apply as usual.
set -eu

prefix=${1:?usage: install.sh PREFIX [SOURCE [MORE...]]}
shift
[ "$#" -gt 0 ] || set -- .
python=${PYTHON:-python3}

if [ -e "$prefix" ]; then
    echo "install.sh: $prefix exists: remove it, or install beside it (docs/deploy.md)" >&2
    exit 2
fi
"$python" -m venv "$prefix"
"$prefix/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
# pip (and setuptools, which venv adds before Python 3.12) install; the worker never needs
# them, and an upgrade is a fresh virtualenv. -qq: no warning when setuptools is not there.
"$prefix/bin/python" -m pip uninstall -qq --yes setuptools pip
"$prefix/bin/botqueue" --help >/dev/null
echo "install.sh: botqueue installed in $prefix"
