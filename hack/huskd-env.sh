# Sourced by hack/start, hack/stop and hack/restart: where huskd lives and
# how to find the one that serves a socket. Each path can be overridden from
# the environment, so the scripts can run against a second, private huskd:
#
#   HUSK_PREFIX   install prefix of huskd, husk-shim, husk-pause (/usr/local)
#   HUSK_CONFIG   config file (/etc/husk/husk.json); its socket, root, state
#                 and cni_conf_dir decide the rest
#   HUSK_SOCKET, HUSK_ROOT, HUSK_STATE   override the config file's values
#   HUSK_LOG      huskd's log without systemd (/var/log/huskd.log)
#   HUSK_CNI_NAT  1: the default bridge network masquerades pod traffic
#                 leaving the node (off by default)

HUSK_PREFIX=${HUSK_PREFIX:-/usr/local}
HUSK_LOG=${HUSK_LOG:-/var/log/huskd.log}
husk_default_config=/etc/husk/husk.json
HUSK_CONFIG=${HUSK_CONFIG:-$husk_default_config}
huskd_bin=$HUSK_PREFIX/bin/huskd

# The arguments huskd gets: the config file and any overrides.
husk_args() {
	printf '%s\n' --config "$HUSK_CONFIG"
	[ -z "${HUSK_SOCKET:-}" ] || printf '%s\n' --socket "$HUSK_SOCKET"
	[ -z "${HUSK_ROOT:-}" ] || printf '%s\n' --root "$HUSK_ROOT"
	[ -z "${HUSK_STATE:-}" ] || printf '%s\n' --state "$HUSK_STATE"
}

# husk_config_value KEY: a string value of the effective configuration.
husk_config_value() {
	local args
	mapfile -t args < <(husk_args)
	"$huskd_bin" "${args[@]}" config |
		sed -n "s/^ *\"$1\": *\"\(.*\)\",*\$/\1/p"
}

# True when the scripts drive the system's huskd (default config, no
# overrides), which systemd manages where it is PID 1.
husk_is_system() {
	[ "$HUSK_CONFIG" = "$husk_default_config" ] && [ -z "${HUSK_SOCKET:-}" ] &&
		[ -z "${HUSK_ROOT:-}" ] && [ -z "${HUSK_STATE:-}" ] && [ -d /run/systemd/system ]
}

# husk_lock_holder SOCKET: print the pid of the huskd that holds SOCKET.lock
# and succeed, or fail when no process holds it. The pid comes from the lock
# file and counts only if /proc/locks shows that very process holding a flock
# on that very file: a stale pid left in the file (huskd killed, pid reused)
# names nobody, and a huskd on another socket is never named.
husk_lock_holder() {
	local lock=$1.lock pid ino
	[ -f "$lock" ] || return 1
	pid=$(head -c 32 "$lock" | tr -cd '0-9')
	[ -n "$pid" ] || return 1
	ino=$(stat -L -c %i "$lock") || return 1
	grep -Eq "^[0-9]+: FLOCK +ADVISORY +WRITE +$pid +[0-9a-f]+:[0-9a-f]+:$ino " /proc/locks ||
		return 1
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = huskd ] || return 1
	echo "$pid"
}

# husk_stop SOCKET: SIGTERM the huskd holding SOCKET's lock and wait for it
# to exit (it stops serving; containers keep running under their shims).
husk_stop() {
	local pid
	pid=$(husk_lock_holder "$1") || {
		echo "no huskd holds $1.lock"
		return 0
	}
	echo "stopping huskd (pid $pid) serving $1"
	kill -TERM "$pid"
	# huskd waits up to shutdown_timeout (10 s by default) for calls in
	# flight before it exits.
	for _ in $(seq 600); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	echo "huskd (pid $pid) did not exit within 60 s" >&2
	return 1
}
