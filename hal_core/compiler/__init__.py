"""The hal compiler: tensor IR -> kernel IR -> target backends -> module.

Kept import-light on purpose (listing commands import the core): import the submodules you use,
e.g. :mod:`hal_core.compiler.kernel_ir` and :mod:`hal_core.compiler.target`.
"""
