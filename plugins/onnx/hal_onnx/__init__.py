"""hal's ONNX importer plugin. The converter lives in :mod:`hal_onnx.importer` (imported only
when a model is imported); :mod:`hal_onnx.backend` makes hal an ``onnx.backend`` Backend."""
