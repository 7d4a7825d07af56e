"""Background work for Hubcast: RQ queues, the worker loop and the jobs it runs.

Nothing in this package may import Reflex: workers are plain Python processes started by
`hubcast worker` (and by the `hubcast run` supervisor), and must start fast and stay small.
"""
