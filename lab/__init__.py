"""Device lab: SSH simulators of a Huawei OLT and a Cisco BNG (see README.md)."""
