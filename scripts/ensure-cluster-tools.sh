#!/usr/bin/env bash
# Debian packages the scaling tests need: HAProxy (test-faults/cluster.faults.ts, test-faults/failover.faults.ts,
# npm run bench:cluster), redis-server (test/scale/redis.test.ts starts its own) and pg_auto_failover
# (postgresql-15-auto-failover: pg_autoctl and the monitor's extension, for test-faults/failover.faults.ts).
# PostgreSQL's server binaries (initdb, pg_basebackup) come with the machine's PostgreSQL. apt only; a missing tool
# makes its test skip with a message, never fail CI setup.
set -u
missing=()
command -v haproxy >/dev/null || missing+=(haproxy)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v pg_autoctl >/dev/null || [ -x /usr/lib/postgresql/15/bin/pg_autoctl ] || missing+=(postgresql-15-auto-failover)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then apt=(apt-get); else apt=(sudo -n apt-get); fi
"${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
  "${apt[@]}" update >/dev/null 2>&1 && "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1
} || echo "ensure-cluster-tools: could not install ${missing[*]}; their tests will skip"
