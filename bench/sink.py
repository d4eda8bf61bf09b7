"""Placeholder."""


def run(ctx):
    return [], {}
