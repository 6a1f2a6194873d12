"""``python -m masterplan.client.cli``: the same as the ``masterplan`` command."""

from masterplan.client.cli.main import main

raise SystemExit(main())
