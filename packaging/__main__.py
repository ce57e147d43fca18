"""``python -m visgate_sdk`` for the installed package; the CLI lives in visgate_sdk itself."""
from visgate_sdk import main

raise SystemExit(main())
