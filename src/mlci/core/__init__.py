"""Pure functions: values in, values out. No network, subprocess, clock or environment."""
