# Shared by scripts/test and scripts/demo: where builds and the emulator live.
# Both are caches outside the clone, made when missing; nothing depends on them existing.

cache="${XDG_CACHE_HOME:-$HOME/.cache}/cm-baseline"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
export CM_EMULATOR_VENV="${CM_EMULATOR_VENV:-$cache/emulator-venv}"
export CM_CHECKOV_VENV="${CM_CHECKOV_VENV:-$cache/checkov-venv}"
export CM_C7N_VENV="${CM_C7N_VENV:-$cache/c7n-venv}"

# ensure_venv WHAT DIR REQUIREMENTS PROBE: installs REQUIREMENTS (PyPI, pinned) into the
# virtualenv DIR, once: again only when REQUIREMENTS changed or PROBE (a command) fails.
ensure_venv() {
  local what="$1" venv="$2" reqs="$3" probe="$4"
  local ready="$venv/.cm-ready"
  if [ -f "$ready" ] && cmp -s "$reqs" "$ready" && eval "$probe" >/dev/null 2>&1; then
    return 0
  fi
  echo "Installing $what into $venv ..." >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs"
  cp "$reqs" "$ready"
}

# The AWS emulator (moto server) and the test tools that share its virtualenv.
ensure_emulator() {
  ensure_venv "the AWS emulator" "$CM_EMULATOR_VENV" tests/support/emulator/requirements.txt \
    '"$CM_EMULATOR_VENV/bin/python" -c "import moto"'
}

# checkov, in a virtualenv of its own: its pins would downgrade the emulator's boto3 and
# botocore (tests/deploy/checkov-requirements.txt).
ensure_checkov() {
  ensure_venv checkov "$CM_CHECKOV_VENV" tests/deploy/checkov-requirements.txt '[ -x "$CM_CHECKOV_VENV/bin/checkov" ]'
}

# Cloud Custodian (c7n, c7n-org), the benchmark's peer, in a virtualenv of its own: c7n pins
# boto3, botocore and PyYAML older than the emulator's (tests/support/c7n/requirements.txt).
ensure_c7n() {
  ensure_venv "Cloud Custodian" "$CM_C7N_VENV" tests/support/c7n/requirements.txt '[ -x "$CM_C7N_VENV/bin/c7n-org" ]'
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

# GNU time (/usr/bin/time), which the benchmarks read peak RSS and CPU from; installed (Debian
# package `time`) when missing and running as root, else they poll /proc instead.
ensure_gnu_time() {
  if [ ! -x /usr/bin/time ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing GNU time (Debian package 'time') for peak RSS ..." >&2
    { apt-get install -y -qq time || { apt-get update -qq && apt-get install -y -qq time; }; } >/dev/null 2>&1 ||
      echo "warning: could not install GNU time; peak RSS is polled from /proc instead" >&2
  fi
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is not installed (https://rustup.rs)" >&2
    exit 1
  fi
}
