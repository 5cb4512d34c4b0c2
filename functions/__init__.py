"""Trigger packages: one Blueprint each, thin adapters over core.app.service."""
