"""Feedline: a real-time user feed system built on change data capture and actors."""

__version__ = "0.1.0"
