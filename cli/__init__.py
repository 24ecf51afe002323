"""The ``minisense`` command line: a thin shell over the library (see ``cli.main``)."""
