"""Training off the runner: a cloud GPU through an engine (Ray, SkyPilot); docs/gpu.md."""
