"""The ``gwvault`` command line: an edge over the service layer, like ``web``.

- ``main``: the entry point; errors to exit codes in one place.
- ``parser``: every command, flag and help text.
- ``*_commands``: the handlers, one module per command group.
- ``input``: secrets from a prompt, a pipe or a private file, never argv.
"""
