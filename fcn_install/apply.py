"""Applying a planned change to the Keras tree: all of it, or none.

(Beside `fileops.Transaction`, whose file it could join.)
"""

from fcn_install.errors import SetupError
from fcn_install.fileops import Transaction
from fcn_install.fileops import rollback_message


def apply_or_roll_back(command, apply):
    """Calls `apply(txn)` with a new `Transaction`; if it raises, rolls the
    transaction back and raises a `SetupError` naming `command` and what
    could not be undone (a `SetupError` or Ctrl-C passes through as is)."""
    txn = Transaction()
    try:
        apply(txn)
    except BaseException as e:
        failed = txn.rollback()
        if isinstance(e, (KeyboardInterrupt, SetupError)):
            raise
        raise SetupError(rollback_message(command, e, failed))
