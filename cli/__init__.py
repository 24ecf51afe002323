"""The ``minisense`` command line: a thin shell over the library (see ``minisense_cli.main``).

The source folder is ``cli/``; it installs as the package ``minisense_cli``."""
