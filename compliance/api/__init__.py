"""The HTTP service: the upload API (``/v1``), health and metrics; the dashboard mounts on the same app."""
