"""Allows ``python -m meshwatch``."""

from meshwatch.cli import main

raise SystemExit(main())
