# Shared by scripts/demo and scripts/test: Debian packages, then the Python environment.
# Uses the active virtualenv when there is one, else creates .venv in the project.

install_debian() {  # install_debian PKG...: apt-get when root, else say what is missing
  [ "$#" -gt 0 ] || return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> apt-get install $*"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "warning: not root, cannot install Debian packages: $* (run: sudo apt-get install $*)" >&2
  fi
}

setup_python() {  # setup_python EXTRAS: sets $PY to the environment's python
  local extras="$1"
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    install_debian python3-venv python3-pip
  fi
  if [ -n "${VIRTUAL_ENV:-}" ]; then
    PY="$VIRTUAL_ENV/bin/python"
  else
    [ -x .venv/bin/python ] || python3 -m venv .venv
    PY="$PWD/.venv/bin/python"
  fi
  echo "==> pip install -e .${extras}"
  "$PY" -m pip install -q --disable-pip-version-check -e ".${extras}" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
}
