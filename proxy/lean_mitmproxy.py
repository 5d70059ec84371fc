"""mitmproxy without the default addons' imports, for the processes that embed it.

`mitmproxy.addons`'s `__init__` imports some 35 addons (flask for the onboarding app, ldap3, passlib
among them) that tmproxy's embedded proxy never loads: a fifth of a second at every start and about
10 MB of memory. Importing the submodules tmproxy uses without that `__init__` avoids both.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def skip_default_addons() -> None:
    """Import `mitmproxy.addons.X` without the package's `__init__`, which imports some 35 addons
    (flask for the onboarding app among them) this proxy never loads: a fifth of a second at every
    start. The package becomes a bare namespace over its folder; only this process sees it."""
    if "mitmproxy.addons" in sys.modules:
        return
    spec = importlib.util.find_spec("mitmproxy.addons")
    if spec is None or not spec.submodule_search_locations:
        return
    package = types.ModuleType("mitmproxy.addons")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["mitmproxy.addons"] = package
