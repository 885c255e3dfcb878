"""`python -m lambdallm` is the `lambdallm` command."""

from lambdallm.cli import main

raise SystemExit(main())
