"""The hal compiler: tensor IR -> kernel IR -> target backends -> module.

* :mod:`.pipeline`: ``compile`` (also ``hal_core.compile``) and ``compile_ir``, the stages in
  order; :mod:`.passes` holds one module per stage (folding, fusion, dispatch formation with
  its scalar bodies, buffer planning, host program emission);
* :mod:`.kernel_ir` and :mod:`.target`: the contract with target backends;
* :mod:`.dump`: readable text of each stage (``hal compile --dump-ir``).

Kept import-light on purpose (listing commands import the core): import the submodules you use.
"""
