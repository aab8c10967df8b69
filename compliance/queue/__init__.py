"""The queue's contract: the Celery app and its settings, queue and task names, which queue judges
which pipeline, and the publisher that sends work by task name. Publishers (the API, the
dashboard, the CLI, the sweeper) and the worker processes (``workers/``) share it; nothing here
imports model code, so publishing never loads a model."""
