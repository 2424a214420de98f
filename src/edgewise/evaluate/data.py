"""The task-file readers live in `edgewise.data.readers`; re-exported here because evaluate/lm.py and
route/calibrate.py import them from this path."""

from edgewise.data.readers import MAX_BYTES, jsonl_objects, read_jsonl, read_text

__all__ = ["MAX_BYTES", "jsonl_objects", "read_jsonl", "read_text"]
