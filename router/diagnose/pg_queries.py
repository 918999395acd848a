"""The read-only SQL the PostgreSQL provider runs.

Every query leaves out the provider's own sessions (``application_name`` is ``$1``).
"""

_OTHERS = "backend_type = 'client backend' AND pid <> pg_backend_pid() AND application_name <> $1"

SETTINGS_SQL = """
SELECT name, setting::int FROM pg_settings
WHERE name IN ('max_connections', 'superuser_reserved_connections', 'reserved_connections')
"""
SESSIONS_SQL = f"""
SELECT datname, application_name AS application, state,
       EXTRACT(EPOCH FROM now() - state_change)::float8 AS state_seconds
FROM pg_stat_activity WHERE {_OTHERS}
"""
LONG_QUERIES_SQL = f"""
SELECT pid, application_name AS application, state, wait_event, query,
       EXTRACT(EPOCH FROM now() - query_start)::float8 AS seconds, count(*) OVER () AS total
FROM pg_stat_activity
WHERE {_OTHERS} AND state = 'active' AND query_start < now() - make_interval(secs => $2)
ORDER BY query_start LIMIT $3
"""
DATABASE_LIMIT_SQL = """
SELECT current_database() AS name, (SELECT datconnlimit FROM pg_database
  WHERE datname = coalesce(NULLIF($1, ''), current_database())) AS connection_limit
"""
LOCKS_SQL = """
SELECT w.pid AS blocked_pid, w.application_name AS blocked_application,
       h.pid AS blocking_pid, h.application_name AS blocking_application,
       h.state AS blocking_state, h.query AS blocking_query,
       EXTRACT(EPOCH FROM now() - h.xact_start)::float8 AS blocking_transaction_seconds,
       EXTRACT(EPOCH FROM now() - w.query_start)::float8 AS waiting_seconds,
       EXTRACT(EPOCH FROM now() - h.state_change)::float8 AS blocking_state_seconds
FROM pg_stat_activity AS w
CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS b(pid)
JOIN pg_stat_activity AS h ON h.pid = b.pid
WHERE w.pid <> pg_backend_pid()
ORDER BY waiting_seconds DESC NULLS LAST, w.pid
"""
