"""The read-only SQL the PostgreSQL provider runs. Every query leaves out the router's own session."""

SETTINGS = """
SELECT name, setting FROM pg_settings
WHERE name IN ('max_connections', 'superuser_reserved_connections', 'reserved_connections')
"""

SESSIONS = """
SELECT pid, datname, application_name AS application, state,
       EXTRACT(EPOCH FROM now() - state_change)::float8 AS state_seconds
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
"""

LONG_QUERIES = """
SELECT pid, application_name AS application, state, wait_event, query,
       EXTRACT(EPOCH FROM now() - query_start)::float8 AS seconds
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND state = 'active' AND query_start < now() - make_interval(secs => $1)
ORDER BY query_start
LIMIT $2
"""

LOCK_CHAINS = """
SELECT waiting.pid AS blocked_pid, waiting.application_name AS blocked_application,
       holder.pid AS blocking_pid, holder.application_name AS blocking_application,
       holder.state AS blocking_state, holder.query AS blocking_query,
       EXTRACT(EPOCH FROM now() - waiting.query_start)::float8 AS waiting_seconds
FROM pg_stat_activity AS waiting
CROSS JOIN LATERAL unnest(pg_blocking_pids(waiting.pid)) AS blocker(pid)
JOIN pg_stat_activity AS holder ON holder.pid = blocker.pid
WHERE waiting.pid <> pg_backend_pid()
ORDER BY waiting_seconds DESC
"""
