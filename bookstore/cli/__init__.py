"""``bookstore-history``: the command line for archived notebook versions."""
