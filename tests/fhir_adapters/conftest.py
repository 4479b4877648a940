"""Make ``fhir_adapters`` resolve to the package, not to this test folder.

pytest's default (prepend) import mode puts ``tests/`` on ``sys.path``, where the folder
``tests/fhir_adapters`` would be imported as a namespace package shadowing the real
``fhir_adapters``. Putting the repository root first makes the real package win.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

if str(REPO) not in sys.path[:1]:
    sys.path.insert(0, str(REPO))
for _name in [m for m in sys.modules if m == "fhir_adapters" or m.startswith("fhir_adapters.")]:
    if getattr(sys.modules[_name], "__file__", None) is None:  # a namespace shadow
        del sys.modules[_name]
