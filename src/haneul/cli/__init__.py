"""The ``haneul`` command line: one module per command group."""
