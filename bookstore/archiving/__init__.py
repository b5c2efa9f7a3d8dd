"""Archiving machinery: the outbox, the archiver, labels kept in the store, and maintenance
(reindex, verify, prune) that keeps the index and the store in agreement."""
