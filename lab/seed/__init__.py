"""``fiberflow lab seed``: N active services written at once into the database, the
running lab's devices and the RADIUS tables, as if each had been provisioned.

``plan_seed`` reads what is taken (database and devices) and plans the services;
``apply_seed`` writes them, all or nothing (run.py). Errors are ``SeedRefused`` (bad
input, no lab, no room: nothing was written) or ``SeedFailed`` (a store refused
mid-way: what was written is rolled back).
"""

from fiberflow.lab.seed.errors import SeedFailed, SeedRefused
from fiberflow.lab.seed.run import SeedResult, apply_seed, plan_seed, seed_services
from fiberflow.lab.seed.target import LabTarget, find_lab

__all__ = [
    "LabTarget",
    "SeedFailed",
    "SeedRefused",
    "SeedResult",
    "apply_seed",
    "find_lab",
    "plan_seed",
    "seed_services",
]
