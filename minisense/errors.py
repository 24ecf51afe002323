"""The one exception type the library raises for bad input.

Every message is a single line that names the offending thing and says how to fix it; the CLI
prints it as ``Error: <message>`` and exits non-zero, never with a traceback.
"""


class MinisenseError(Exception):
    """Bad input to minisense: a one-line message naming the thing and the fix."""
