"""vmvx: the portable reference target of hal.

Kernel IR is lowered to a compact bytecode (``vmvx-bytecode``, a FlatBuffer described by
``vmvx.fbs``) whose instructions are numpy microkernels; the loader in :mod:`hal_vmvx.loader`
runs it on the local drivers. Nothing is imported here: ``hal targets list`` imports only
:mod:`hal_vmvx.plugin`.
"""
