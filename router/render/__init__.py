"""Rendering helpers shared by sinks: markdown → Slack mrkdwn, Block Kit limits, graphs.

Nothing here does I/O: every function turns data into text, blocks or PNG bytes.
"""

from router.render.mrkdwn import Block, blocks, escape, to_mrkdwn

__all__ = ["Block", "blocks", "escape", "to_mrkdwn"]
