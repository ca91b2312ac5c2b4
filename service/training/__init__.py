"""Training: from a request to a ready model version, through the queue and a worker process.

    request   check a training request before any job exists (the API process)
    executor  the Huey queue that delivers job ids to workers, and the sweeper that makes delivery reliable
    worker    the worker process: a Huey consumer, its sweeper, serve's child worker
    trainer   one training job, start to end (imports torch through model/: only a worker process imports it)

Nothing is imported here: the API process imports request and executor without torch.
"""
