"""`python -m runflow_api ...`: see cli.py."""

from .cli import main

raise SystemExit(main())
