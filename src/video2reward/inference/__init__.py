"""Scoring: the streaming scorer (the one place that knows first frame, goal, motion partner and context), files to JSONL, the relative reading, export."""
