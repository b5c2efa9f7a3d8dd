"""The Jupyter Server side: the extension's wiring, save hooks, checkpoints and handlers."""
