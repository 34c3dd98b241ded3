"""Kernel IR -> SPIR-V, emitted by hand (no glslang/shaderc).

Reading order, top to bottom: :mod:`hal_vulkan.target` (the backend: one module per executable,
one entry point per kernel, the variant's requirements) -> :mod:`.builder` (ids, types,
constants, decorations, the binary) -> :mod:`.shader` (buffers as uint words, typed element
access, loops, barriers, the grid) -> :mod:`.scalar` (kernel IR's scalar ops) ->
:mod:`.generic` (GenericKernel: elementwise and reductions) -> :mod:`.named` (matmul, conv2d,
pooling, argmax/argmin, gather, softmax) -> :mod:`.matmul`, :mod:`.matmul_vec4`, :mod:`.conv`
(shared-memory tiled GEMMs).
"""
