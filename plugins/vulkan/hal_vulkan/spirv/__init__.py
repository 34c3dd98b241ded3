"""Kernel IR -> SPIR-V: a module builder (builder), shader helpers (shader), lowerings."""
