"""The CLI's commands, one module each: keyword arguments in, an exit code out.

`mlci.cli` parses the command line and calls `<module>_command`; nothing here sees
argparse. run (run, gate), report, registry (show, history, rollback), data (pull,
status), publish, comment, doctor, init, demo.
"""
