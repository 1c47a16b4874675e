# shellcheck shell=bash
# Installing what a script needs: Debian packages that are missing, and a virtual environment
# kept in step with a requirements file. Sourced by ops/setup and the studies' run scripts; the
# caller defines `log MESSAGE` (to stderr).

# apt_install PACKAGE...: installs the named Debian packages that are not installed yet.
apt_install() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "apt-get install ${missing[*]}"
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
}

# requirements_venv VENV REQUIREMENTS PYTHON [VENV_OPTIONS [PIP_OPTIONS]]: a venv of PYTHON at
# VENV (made with VENV_OPTIONS, e.g. --system-site-packages) with REQUIREMENTS installed (pip given
# PIP_OPTIONS, e.g. --no-deps); made anew whenever the file or the options change.
requirements_venv() {
    local venv=$1 requirements=$2 python=$3 venv_options=${4:-} pip_options=${5:-}
    local stamp="$venv/requirements.sha256" wanted
    wanted=$( (cat "$requirements"; echo "$python $venv_options $pip_options") | sha256sum | cut -d' ' -f1)
    [ "$(cat "$stamp" 2>/dev/null || true)" = "$wanted" ] && return 0
    log "installing $requirements into $venv"
    rm -rf "$venv"
    # shellcheck disable=SC2086  # the options are words
    "$python" -m venv $venv_options "$venv" >&2
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $pip_options -r "$requirements" >&2
    echo "$wanted" > "$stamp"
}
