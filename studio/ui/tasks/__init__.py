"""Job runners: what the queue's worker thread runs for each kind of training, through the public domain APIs.

Each runner is `run(studio, ctx) -> library folder | None` (None when the job was stopped before the end).
"""
