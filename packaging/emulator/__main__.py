"""``python -m visgate_emulator`` for the installed package; the emulator lives in visgate_emulator itself."""
from visgate_emulator import main

raise SystemExit(main())
