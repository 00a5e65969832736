"""Prefect tasks, one per lifecycle step, and their state hooks. No netmiko/pyrad here."""
