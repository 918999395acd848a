"""PagerDuty: the Events and REST API clients, events and notes rendering, the sink,
and the ``/pagerduty/webhook`` endpoint with its signature check."""
