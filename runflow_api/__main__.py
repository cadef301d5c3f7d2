"""`python -m runflow_api ...`: see cli.py."""

from .catalogue.cli import main

raise SystemExit(main())
