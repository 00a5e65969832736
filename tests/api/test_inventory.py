"""``GET /api/v1/inventory``: devices and plans for operators, never a credential."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fiberflow.core.db.migrate import upgrade
from fiberflow.lab.lab_inventory import LAB_PLANS, build_inventory, write_inventory
from tests.fixtures.api_app import DUMMY_PORTS, ApiApp, open_api

INVENTORY = "/api/v1/inventory"
# Distinctive credentials, so a leak anywhere in the answer is found by value too.
OLT_PASSWORD = "Olt-Pw-7c1e9a55"
BNG_PASSWORD = "Bng-Pw-2f8d4b11"
NAS_SECRET = "Nas-Secret-93ab"
RADIUS_SECRET = "Radius-Secret-d04e"
SECRETS = (OLT_PASSWORD, BNG_PASSWORD, NAS_SECRET, RADIUS_SECRET)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[ApiApp]:
    inv = build_inventory(host="127.0.0.1", **DUMMY_PORTS)  # type: ignore[arg-type]
    inv = inv.model_copy(update={
        "olts": [o.model_copy(update={"password": OLT_PASSWORD}) for o in inv.olts],
        "bngs": [b.model_copy(update={"password": BNG_PASSWORD, "nas_secret": NAS_SECRET})
                 for b in inv.bngs],
        "radius": inv.radius.model_copy(update={"secret": RADIUS_SECRET}),
    })  # fmt: skip
    path = write_inventory(inv, tmp_path / "inventory.yaml")
    assert all(s in path.read_text() for s in SECRETS)  # the file does hold them
    url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade(url)
    with open_api(url, tmp_path / "data", path, None) as api:
        yield api


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [*value, *(k for v in value.values() for k in _keys(v))]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []


def test_operator_gets_devices_and_plans_without_any_secret(app: ApiApp) -> None:
    r = app.client.get(INVENTORY, headers=app.auth())
    assert r.status_code == 200, r.text
    inv = r.json()
    assert {o["name"] for o in inv["olts"]} == {"olt-1", "olt-2"}
    assert [b["name"] for b in inv["bngs"]] == ["bng-1"]
    assert [p["name"] for p in inv["plans"]] == [p.name for p in LAB_PLANS]
    for device in [*inv["olts"], *inv["bngs"]]:
        assert {"name", "platform", "host", "port"} <= set(device), device
        assert device["host"] == "127.0.0.1" and isinstance(device["port"], int)
    assert {o["platform"] for o in inv["olts"]} == {"huawei_olt"}
    assert inv["bngs"][0]["platform"] == "cisco_ios"
    assert inv["olts"][0]["bng"] == "bng-1"
    assert inv["olts"][0]["vlan_range"] == [100, 3999]
    assert inv["olts"][0]["boards"] == {"0/1": 16, "0/2": 16}
    assert inv["plans"][0]["download_kbps"] == LAB_PLANS[0].download_kbps

    bad_keys = [k for k in _keys(inv) if "password" in k.lower() or "secret" in k.lower()]
    assert bad_keys == []
    assert not [s for s in SECRETS if s in r.text]


def test_customer_is_403_and_no_token_is_401(app: ApiApp) -> None:
    r = app.client.get(INVENTORY, headers=app.auth("customer", sub="cust-1"))
    assert r.status_code == 403 and "operator" in r.json()["detail"]
    assert app.client.get(INVENTORY).status_code == 401
    assert not [s for s in SECRETS if s in r.text]


def test_a_changed_inventory_file_is_served_without_restart(app: ApiApp, tmp_path: Path) -> None:
    before = app.client.get(INVENTORY, headers=app.auth()).json()
    inv = build_inventory(host="127.0.0.1", **{**DUMMY_PORTS, "olt_ports": {"olt-1": 1}})  # type: ignore[arg-type]
    path = tmp_path / "inventory.yaml"
    write_inventory(inv, path)
    st = path.stat()  # a different mtime even within the filesystem's time resolution
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    after = app.client.get(INVENTORY, headers=app.auth()).json()
    assert len(before["olts"]) == 2 and [o["name"] for o in after["olts"]] == ["olt-1"]
    r = app.client.post("/api/v1/services", headers=app.auth(), json={
        "customer_ref": "c", "plan": "100M", "olt": "olt-2", "pon_port": "0/1/3",
        "ont_serial": "485754431A2B3C4D"})  # fmt: skip
    assert r.status_code == 422 and "olt" in r.json()["detail"]


def test_a_broken_inventory_is_503_with_a_message(app: ApiApp, tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("olts: [\n")
    r = app.client.get(INVENTORY, headers=app.auth())
    assert r.status_code == 503 and isinstance(r.json()["detail"], str)
    path.unlink()
    r = app.client.get(INVENTORY, headers=app.auth())
    assert r.status_code == 503 and "inventory" in r.json()["detail"]


def test_a_broken_inventory_never_echoes_a_secret(app: ApiApp, tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    text = path.read_text().replace(f"password: {OLT_PASSWORD}",
                                    f'password: "{OLT_PASSWORD}\n  x: [', 1)  # fmt: skip
    assert text != path.read_text()
    path.write_text(text)
    r = app.client.get(INVENTORY, headers=app.auth())
    assert r.status_code == 503
    assert OLT_PASSWORD not in r.text
