"""The HAL conformance test suite (CTS), shipped as a pytest plugin.

``pytest --hal-driver=NAME`` runs every suite in this package against the driver ``NAME`` (any
installed driver plugin); ``--hal-device=URI`` picks one device of it. Without the option the
plugin registers its options and nothing else.
"""
