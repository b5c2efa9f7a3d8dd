"""The archive service: one JupyterHub service holds the store and index credentials,
and user servers hand it their saves with nothing but their own Hub token."""
