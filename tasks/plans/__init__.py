"""One dry-run planner per operation (tasks/dry_run.py dispatches to them)."""
