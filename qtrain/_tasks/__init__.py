"""Experiments as plain functions `run(cfg, out_dir) -> results`, one module
each. The Hydra entry point (`qtrain.cli`) only picks one by name."""

__all__: list[str] = []
