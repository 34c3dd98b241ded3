"""Test importers with options (HAL_EXTERNAL_DRIVERS).

``shaped`` reads a ``.shaped`` file holding text IR with ``{n}`` where the input's length
goes, set by the option ``length`` (default 4), as an ONNX importer takes input shapes.
``plain`` (``.plain``) has the old one-argument factory.
"""

from __future__ import annotations

import os

from hal_core.descriptors import ImporterInfo
from hal_core.errors import UsageError
from hal_core.hookspecs import hookimpl
from hal_core.ir import parse

HAL_PLUGIN_API_VERSION = "1.0"
KNOWN = ("length",)


def import_shaped(source, options):
    unknown = sorted(set(options) - set(KNOWN))
    if unknown:
        raise UsageError(f"importer 'shaped' has no option {unknown[0]!r}; it knows "
                         f"{', '.join(KNOWN)}")
    text = open(os.fspath(source)).read() if not isinstance(source, bytes) else source.decode()
    return parse(text.replace("{n}", options.get("length", "4")))


def import_plain(source):
    return parse(open(os.fspath(source)).read())


@hookimpl
def hal_register_importers():
    return [ImporterInfo("shaped", "text IR with an input length option",
                         __name__ + ":import_shaped", (".shaped",)),
            ImporterInfo("plain", "text IR, no options", __name__ + ":import_plain",
                         (".plain",))]
