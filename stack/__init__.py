"""The application shell: the `fiberflow` command, the `up` supervisor and the processes it
starts (API, worker, lab, Prefect server, Redis), the demo, and the crash reconciler.

The only package that knows every other one; nothing imports it but itself."""
