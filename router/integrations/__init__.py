"""Integrations: one package per destination, each with everything it needs.

``slack/`` and ``pagerduty/`` hold their API client, rendering, sink and the HTTP
endpoints the service calls back on; ``console.py`` prints. Every sink satisfies
``router.pipeline.Sink``; failures are ``router.delivery.DeliveryError``.
"""
