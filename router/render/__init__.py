"""Rendering facts every destination shares: bounded label lists, the silence link,
the order findings are shown in. Nothing here does I/O."""
