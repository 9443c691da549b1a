"""The network modules are standard library only; ecdsa is loaded only to verify."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
before = set(sys.modules)
import vmprep.agent.fetch, vmprep.agent.reportsender, vmprep.agent.identity
import vmprep.agent.verify, vmprep.agent.document, vmprep.agent.http, vmprep.agent.retry
print(json.dumps(sorted(set(sys.modules) - before)))
from vmprep.agent import verify
verify.trusted_keys(["ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="])
print(json.dumps(sorted(m.split(".")[0] for m in set(sys.modules) - before)))
"""


def test_network_modules_import_only_the_standard_library():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    first, second = (json.loads(line) for line in out.stdout.splitlines())
    tops = {name.split(".")[0] for name in first}
    outside = {t for t in tops if t not in sys.stdlib_module_names and t != "vmprep"}
    assert not outside, outside
    assert {n for n in first if n.startswith("vmprep")} <= {
        "vmprep",
        "vmprep.agent",
        *(
            f"vmprep.agent.{m}"
            for m in ("fetch", "reportsender", "identity", "verify", "document", "http", "retry")
        ),
        "vmprep.protocol",
        *(
            f"vmprep.protocol.{m}"
            for m in ("durations", "strictjson", "atomic", "timestamps", "keys")
        ),
    }
    assert "ecdsa" in set(second)  # loaded when a key is checked, not before
