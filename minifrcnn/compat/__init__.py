"""Bridges to other libraries' detectors (today: torchvision's)."""
