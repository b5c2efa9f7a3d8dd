"""Pure logic: keys and object metadata, records, errors, retention, diffs, notebook bytes.

Nothing here does I/O or imports from the rest of bookstore; every other layer
builds on it.
"""
