"""The pipeline process: wiring of the actor tree, its health server and metrics."""
