"""Stubs generated from api.proto by scripts/gen-podresources-stubs; do not edit."""
