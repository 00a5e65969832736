"""Two orders on one PON port at once: each session reads the lowest free ONT id, and
the second ``ont add`` finds it taken. The driver reads again and takes the next one
(seen in a burst of 30 provisionings: two orders on one port, one failed)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fiberflow.devices.inventory import Olt
from fiberflow.devices.olt import HuaweiOlt
from fiberflow.lab.devices import LabOlt

SERIALS = ["48575443000000A1", "48575443000000A2", "48575443000000A3"]


def test_concurrent_adds_on_one_port_get_distinct_ids(olt_inventory: Olt, lab_olt: LabOlt) -> None:
    # Every add waits long enough for the other sessions to read the same free id first.
    lab_olt.faults.update(latency=0.5, latency_match=r"^ont add")
    olt = HuaweiOlt(olt_inventory.model_copy(update={"max_sessions": 3, "timeout": 30.0}))

    def add(serial: str) -> int:
        result = olt.add_ont("0/1/5", None, serial, 10, 10, "race")
        return int(str(result.detail["ont_id"]))

    with ThreadPoolExecutor(len(SERIALS)) as pool:
        ids = list(pool.map(add, SERIALS))
    assert sorted(ids) == [0, 1, 2]
    on_port = {v.ont.serial: v.key[3] for v in lab_olt.state.views_on_port(0, 1, 5)}
    assert on_port == dict(zip(SERIALS, ids, strict=True))
    # The collision really happened: more adds were sent (each delayed 0.5 s) than ONTs
    # were made.
    assert lab_olt.counters.latency_s > 0.5 * len(SERIALS)
