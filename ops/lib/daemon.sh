# shellcheck shell=bash
# What ops/broker and ops/s3 share to run a local daemon: whether a pid is alive, which pid a
# pid file names, whether a port accepts connections, starting a command detached, waiting for
# it to be ready, stopping it. Sourced; the caller defines `log MESSAGE` (to stderr).

# alive PID: alive and not a zombie (a daemon that dies during start stays one until the
# script that started it exits).
alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }

# pid_of PIDFILE MARKER: prints the pid in PIDFILE and succeeds if it is alive and its command
# line still contains MARKER (guards against a reused pid).
pid_of() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && alive "$pid" || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" || return 1
    echo "$pid"
}

# port_open HOST PORT: something accepts connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# daemon PIDFILE LOGFILE COMMAND...: starts COMMAND in a session of its own, all descriptors away
# from the caller (it outlives the script and never holds a caller's pipe open).
daemon() {
    local pidfile=$1 logfile=$2; shift 2
    # shellcheck disable=SC2016  # expanded by the inner bash
    setsid bash -c 'echo $$ > "$1"; shift; exec "$@"' bash "$pidfile" "$@" </dev/null >"$logfile" 2>&1 &
}

# wait_ready WHAT PIDFILE LOGFILE HOST PORT SECONDS: waits until the daemon is up and HOST:PORT
# accepts connections; fails (saying why, with the log's last lines) when it exits first or
# SECONDS pass.
wait_ready() {
    local what=$1 pidfile=$2 logfile=$3 host=$4 port=$5 limit=$(($6 * 10)) waited=0 pid=""
    while :; do
        [ -z "$pid" ] && pid=$(cat "$pidfile" 2>/dev/null || true)
        if [ -n "$pid" ] && ! alive "$pid"; then
            log "error: the $what exited during start; last lines of $logfile:"
            tail -n 20 "$logfile" >&2
            rm -f "$pidfile"
            return 1
        fi
        [ -n "$pid" ] && port_open "$host" "$port" && return 0
        if [ "$waited" -ge "$limit" ]; then
            log "error: no connection on $host:$port after $6 s; last lines of $logfile:"
            tail -n 20 "$logfile" >&2
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
}

# stop_pid WHAT PID: TERM, then KILL after 5 s.
stop_pid() {
    local what=$1 pid=$2 waited=0
    kill -TERM "$pid" 2>/dev/null || true
    while alive "$pid"; do
        if [ "$waited" -ge 50 ]; then
            log "$what still running after 5 s: sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
}
