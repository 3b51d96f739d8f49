# Sourced by the scripts that run a test's service in the foreground (tests/registry,
# tests/connect): `watched WATCH_PID COMMAND...` runs COMMAND in the background until it
# exits, or until WATCH_PID (the test process) does; the command is stopped on the way out.
watched() {
  local watch=$1
  shift
  "$@" &
  watched_pid=$! # global: the EXIT trap runs after this function's locals are gone
  trap 'kill $watched_pid 2>/dev/null; wait $watched_pid 2>/dev/null; exit 0' EXIT TERM INT
  while kill -0 "$watched_pid" 2>/dev/null; do
    if [ -n "$watch" ] && ! kill -0 "$watch" 2>/dev/null; then break; fi
    sleep 0.5
  done
}
