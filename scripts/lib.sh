# Shared by scripts/test and scripts/demo: where builds and the emulator live.
# Both are caches outside the clone, made when missing; nothing depends on them existing.

cache="${XDG_CACHE_HOME:-$HOME/.cache}/cm-baseline"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
export CM_EMULATOR_VENV="${CM_EMULATOR_VENV:-$cache/emulator-venv}"
export CM_CHECKOV_VENV="${CM_CHECKOV_VENV:-$cache/checkov-venv}"

# Installs the AWS emulator (moto server from PyPI, pinned) into its virtualenv, once.
ensure_emulator() {
  local reqs="tests/support/emulator/requirements.txt"
  local ready="$CM_EMULATOR_VENV/.cm-emulator-ready"
  if [ -f "$ready" ] && cmp -s "$reqs" "$ready" && "$CM_EMULATOR_VENV/bin/python" -c 'import moto' 2>/dev/null; then
    return 0
  fi
  echo "Installing the AWS emulator into $CM_EMULATOR_VENV ..." >&2
  python3 -m venv "$CM_EMULATOR_VENV"
  "$CM_EMULATOR_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs"
  cp "$reqs" "$ready"
}

# Installs checkov (PyPI, pinned) into a virtualenv of its own, once: its pins would
# downgrade the emulator's boto3 and botocore (tests/deploy/checkov-requirements.txt).
ensure_checkov() {
  local reqs="tests/deploy/checkov-requirements.txt"
  local ready="$CM_CHECKOV_VENV/.cm-checkov-ready"
  if [ -f "$ready" ] && cmp -s "$reqs" "$ready" && [ -x "$CM_CHECKOV_VENV/bin/checkov" ]; then
    return 0
  fi
  echo "Installing checkov into $CM_CHECKOV_VENV ..." >&2
  python3 -m venv "$CM_CHECKOV_VENV"
  "$CM_CHECKOV_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs"
  cp "$reqs" "$ready"
}

# Installs Chromium (the distribution's package) for tests/status_page.rs, which loads the
# daemon's status page in a headless browser; skipped when chromium is already on PATH.
# Installing needs root (CI runs as root on a fresh Debian machine); otherwise it says how.
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: chromium is not installed; tests/status_page.rs needs it (Debian: sudo apt-get install chromium)" >&2
    exit 1
  fi
  echo "Installing chromium ..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is not installed (https://rustup.rs)" >&2
    exit 1
  fi
}
