"""Slack: the Web API client, Block Kit and mrkdwn rendering, the sink, the graph,
the ``response_url`` answers, and the ``/slack/*`` endpoints with their signature check."""
