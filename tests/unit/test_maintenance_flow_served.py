"""The flow as `rolling_node_maintenance.serve()` runs it: pickled, in a fresh process."""

from __future__ import annotations

import subprocess
import sys

import cloudpickle

from flows.rolling_maintenance import rolling_node_maintenance

LOAD_AND_VALIDATE = """
import sys, cloudpickle
flow = cloudpickle.loads(sys.stdin.buffer.read())
params = flow.validate_parameters({"params": {"nodes": ["worker-1"]}})["params"]
print(type(params).__name__, params.nodes)
"""


def test_served_flow_still_validates_its_parameters_in_the_run_process():
    # serve() starts each run with multiprocessing "spawn" and the flow pickled; the function is
    # pickled by value (the module attribute is the Flow, not the function), without its module
    done = subprocess.run(
        [sys.executable, "-c", LOAD_AND_VALIDATE],
        input=cloudpickle.dumps(rolling_node_maintenance),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.decode().strip() == "MaintenanceParams ['worker-1']"
