"""Checks drivers' photos by their vehicles (人车合照): person, vehicle, plate and face."""

__version__ = "0.1.0"
