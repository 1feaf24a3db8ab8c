"""Wiring: builds the adapters and the core and runs them in one asyncio TaskGroup."""
