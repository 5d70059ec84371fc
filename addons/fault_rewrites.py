"""mitmproxy script: the answer-changing half of the fault addons, for mitmdump and mitmweb.

Load it before `addons/fan_session.py` and `addons/faults.py` after (see `addons/faults.py`):

    mitmdump -s addons/fault_rewrites.py -s addons/fan_session.py -s addons/faults.py --set tm_faults=polling
"""

from addons.faults import FaultRewrites

addons = [FaultRewrites()]
