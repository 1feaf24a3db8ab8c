"""Async glue around the monitor core: builds the adapters and the core, runs them in one
asyncio TaskGroup (queues, the window clock, scoring and fitting off the event loop,
persistence, logging), and the offline train/evaluate commands that replay into the core."""
