# Sourced by scripts/run.sh and scripts/test.sh: installs what building Aula needs beyond Rust.
install_build_deps() {
    local pkgs=()
    command -v cc >/dev/null 2>&1 || pkgs+=(gcc libc6-dev)
    command -v pkg-config >/dev/null 2>&1 || pkgs+=(pkg-config)
    if ! pkg-config --exists openssl 2>/dev/null; then
        pkgs+=(libssl-dev)
    fi
    ((${#pkgs[@]})) || return 0
    if [[ ${EUID:-$(id -u)} -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        echo "Aula needs these to build: ${pkgs[*]} (Debian: apt-get install -y ${pkgs[*]})" >&2
        return 0
    fi
    echo "installing build dependencies: ${pkgs[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" || {
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
    }
}
