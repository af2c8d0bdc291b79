# Sourced by measure-webhook.sh and soak.sh: a separate release `isvc-ingress serve` on loopback
# (self-signed, standalone, webhook on 127.0.0.1:18443, admin on 127.0.0.1:18081), for the
# measurements that need the real process rather than the load tool's in-process server.

# start_local_server CONFIG WORKDIR: starts it with CONFIG, writes its CA to WORKDIR/ca.pem and
# its log to WORKDIR/server.log, sets $server to its pid, and returns once /readyz answers 200
# (fails after 10 s).
start_local_server() {
  # The measured review (tests/fixtures/admission/isvc-create-3kb.json) sets isvc-ingress.io/timeout,
  # which applies when isvc-ingress writes the routes.
  target/release/isvc-ingress serve --self-signed --standalone --config "$1" --route-owner isvc-ingress \
    --listen 127.0.0.1:18443 --admin-listen 127.0.0.1:18081 --log-format json \
    >"$2/ca.pem" 2>"$2/server.log" &
  server=$!
  for _ in $(seq 100); do
    curl -sf http://127.0.0.1:18081/readyz >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the local server did not become ready; its log: $2/server.log" >&2
  return 1
}

# rss_kib: the server's resident memory, in KiB.
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
