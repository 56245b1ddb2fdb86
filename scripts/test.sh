#!/usr/bin/env bash
# Runs every Aula test: the web client's type check and unit tests, the Rust unit, property and
# integration tests (which start the real binary on ephemeral ports), then the browser
# end-to-end tests when present.
#
# Run as root (e.g. in CI or a fresh container), it first installs what the tests need and is
# missing: chromium and chromium-driver, coturn, an emoji font, python3 with the websockets
# package, nodejs and npm, the node packages in tests/, and cargo-deny (for the dependency licence
# checks). Each install happens only when its tool is missing.
# Set AULA_TEST_NO_INSTALL=1 to skip installing; `--install-only` installs and stops. Other
# arguments go to `cargo test`, e.g.
#   bash scripts/test.sh -- --nocapture
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

have() { command -v "$1" >/dev/null 2>&1; }
has_py_websockets() { have python3 && python3 -c 'import websockets' >/dev/null 2>&1; }

install_missing() {
    local pkgs=()
    have chromium || pkgs+=(chromium)
    have chromedriver || pkgs+=(chromium-driver)
    have turnserver || pkgs+=(coturn)
    # The reaction emoji in the browser tests' screenshots (and docs/screenshots/).
    [[ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]] || pkgs+=(fonts-noto-color-emoji)
    # The websockets package for the system python comes from apt; another python3 (pyenv,
    # a virtualenv) gets it from pip below.
    if ! has_py_websockets && { ! have python3 || [[ $(command -v python3) == /usr/bin/python3 ]]; }; then
        pkgs+=(python3 python3-websockets)
    fi
    have node || pkgs+=(nodejs)
    have npm || pkgs+=(npm)

    if ((${#pkgs[@]})); then
        if [[ ${EUID:-$(id -u)} -ne 0 ]]; then
            echo "test.sh: not root, not installing: ${pkgs[*]} (tests that need them may fail)" >&2
        elif ! have apt-get; then
            echo "test.sh: no apt-get, please install: ${pkgs[*]}" >&2
        else
            echo "test.sh: installing ${pkgs[*]}" >&2
            export DEBIAN_FRONTEND=noninteractive
            # Refresh the package lists only when there are none or the install fails without.
            if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
                apt-get update -qq
            fi
            if ! apt-get install -y -qq --no-install-recommends "${pkgs[@]}"; then
                apt-get update -qq
                apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
            fi
        fi
    fi

    # pip for a python3 that is not the system one, or when apt could not provide the package.
    if have python3 && ! has_py_websockets; then
        if python3 -m pip --version >/dev/null 2>&1; then
            echo "test.sh: pip install websockets" >&2
            python3 -m pip install --quiet websockets ||
                python3 -m pip install --quiet --break-system-packages websockets
        else
            echo "test.sh: python3 has no websockets package and no pip (examples/ tests may fail)" >&2
        fi
    fi

    # cargo-deny for the licence, ban and source checks (built from source: about two minutes).
    if ! have cargo-deny; then
        echo "test.sh: cargo install --locked cargo-deny" >&2
        cargo install --locked --quiet cargo-deny
    fi

    # Node packages for the browser tests (playwright-core) and the web client's type check
    # (typescript), when the tests declare them (again when an older install lacks typescript).
    if [[ -f tests/package.json && ( ! -d tests/node_modules || ! -e tests/node_modules/.bin/tsc ) ]] && have npm; then
        if [[ -f tests/package-lock.json ]]; then
            (cd tests && npm ci --no-audit --no-fund)
        else
            (cd tests && npm install --no-audit --no-fund)
        fi
    fi
}

source scripts/build-deps.sh
if [[ "${AULA_TEST_NO_INSTALL:-0}" != 1 ]]; then
    install_build_deps
    install_missing
fi
if [[ "${1:-}" == --install-only ]]; then
    exit 0
fi

# Every dependency's licence must fit MIT/Apache-2.0, no git or unknown sources (deny.toml).
echo "test.sh: cargo deny check licenses bans sources" >&2
cargo deny --log-level error check licenses bans sources

# The web client's plain ES modules: type-checked from their JSDoc (`// @ts-check`, no build step;
# web-client/jsconfig.json) and its pure modules unit-tested under node (tests/web_unit/).
if ! have node || [[ ! -e tests/node_modules/.bin/tsc ]]; then
    echo "test.sh: node or typescript (tests/node_modules) is missing; run this script as root once to install them" >&2
    exit 1
fi
echo "test.sh: tsc -p web-client/jsconfig.json" >&2
(cd tests && node_modules/.bin/tsc -p ../web-client/jsconfig.json)
echo "test.sh: node --test tests/web_unit/" >&2
node --test tests/web_unit/

echo "test.sh: cargo test --workspace --all-targets --no-fail-fast $*" >&2
cargo test --workspace --all-targets --no-fail-fast "$@"

# Browser end-to-end tests (node's test runner driving chromium), once tests/e2e/ exists.
shopt -s nullglob
e2e=(tests/e2e/*.test.mjs tests/e2e/*.test.js)
if ((${#e2e[@]})); then
    if ! have node; then
        echo "test.sh: node is missing, cannot run ${#e2e[@]} browser test file(s)" >&2
        exit 1
    fi
    # The same targets and features as `cargo test` above, so this reuses its build of the binary
    # (`cargo build --bin aula` alone resolves the dependencies' features differently and
    # rebuilt ~2-5 minutes' worth of crates).
    cargo build --workspace --all-targets
    target_dir=$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    export AULA_BIN="$target_dir/debug/aula"
    if [[ -z "${CHROMIUM_PATH:-}" ]] && have chromium; then
        CHROMIUM_PATH=$(command -v chromium)
        export CHROMIUM_PATH
    fi
    # One browser test file at a time: each starts a server and several Chromium pages.
    echo "test.sh: node --test --test-concurrency=1 ${e2e[*]}" >&2
    node --test --test-concurrency=1 "${e2e[@]}"
fi
