"""IREE's command-line tensor syntax, for ``hal run`` and ``hal benchmark``.

Accepted input forms (as ``iree-run-module --input=`` takes them):

* ``2x2xf32=1 2 3 4`` or ``2x2xf32=1,2,3,4``   - values in row-major order
* ``2x2xf32=[[1 2][3 4]]`` / ``[[1, 2], [3, 4]]`` - brackets are layout sugar only
* ``1x3x224x224xf32=0``                         - a single value splats over the shape
* ``f32=2.5``                                   - a rank-0 tensor
* ``4xi32``                                     - no ``=``: zeros
* ``@x.npy``                                    - a NumPy file
* ``2x2xf32=@x.bin``                            - raw little-endian bytes of that type

Outputs print as ``SHAPExTYPE=[...]`` or are written with ``@out.npy``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from hal_core.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

# IREE element type spellings -> numpy dtype names.
ELEMENT_TYPES: dict[str, str] = {
    "f16": "float16", "f32": "float32", "f64": "float64",
    "i1": "bool", "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64",
    "si8": "int8", "si16": "int16", "si32": "int32", "si64": "int64",
    "ui8": "uint8", "u8": "uint8", "ui16": "uint16", "ui32": "uint32", "ui64": "uint64",
    "u16": "uint16", "u32": "uint32", "u64": "uint64",
}
# numpy name -> the first IREE spelling listed for it (reversed: earlier keys win).
_TYPE_NAMES = {v: k for k, v in reversed(list(ELEMENT_TYPES.items()))}

_SPEC = re.compile(r"^(?:(?P<dims>(?:\d+x)*)(?P<type>[a-z]+\d+))$")


def _split_type(spec: str, text: str) -> tuple[tuple[int, ...], str]:
    m = _SPEC.match(spec.strip())
    if not m or m.group("type") not in ELEMENT_TYPES:
        known = ", ".join(sorted(ELEMENT_TYPES))
        raise UsageError(
            f"input {text!r}: expected a type such as '2x3xf32' or 'f32' before '=', found "
            f"{spec!r}; element types: {known}"
        )
    dims = tuple(int(d) for d in m.group("dims").split("x") if d)
    return dims, ELEMENT_TYPES[m.group("type")]


def parse_input(text: str, *, base_dir: Path | None = None) -> np.ndarray:
    """Parse one ``--input`` value into a numpy array."""
    import numpy as np

    if text.startswith("@"):
        return _load_npy(text[1:], text, base_dir)
    spec, eq, values = text.partition("=")
    shape, dtype = _split_type(spec, text)
    count = 1
    for d in shape:
        count *= d
    if not eq:
        return _zeros(shape, dtype, text)
    values = values.strip()
    if values.startswith("@"):
        path = _resolve(values[1:], base_dir)
        raw = _read_bytes(path, text)
        expected = count * np.dtype(dtype).itemsize
        if len(raw) != expected:
            raise UsageError(
                f"input {text!r}: {path} holds {len(raw)} bytes, expected {expected} for "
                f"{spec} ({count} elements of {dtype})"
            )
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    _check_brackets(values, text)
    tokens = [t for t in re.split(r"[\s,\[\]]+", values) if t]
    try:
        if dtype == "bool":
            parsed = [_parse_bool(t) for t in tokens]
        elif np.dtype(dtype).kind == "f":
            parsed = [float(t) for t in tokens]
        else:
            parsed = [int(t, 0) for t in tokens]
    except ValueError as e:
        raise UsageError(f"input {text!r}: {e}; expected numbers of type {dtype}") from None
    splat = len(parsed) == 1 and count != 1
    if not splat and len(parsed) != count:
        raise UsageError(
            f"input {text!r}: shape {'x'.join(map(str, shape)) or 'scalar'} needs {count} "
            f"values (or 1 to splat), found {len(parsed)}"
        )
    try:
        array = np.array(parsed, dtype=dtype)
    except OverflowError as e:
        raise UsageError(f"input {text!r}: a value does not fit {dtype}: {e}") from None
    if not splat:
        return array.reshape(shape)
    out = _zeros(shape, dtype, text)
    out[...] = array[0]
    return out


def _check_brackets(values: str, text: str) -> None:
    """Brackets are layout sugar, but they must pair up: '[[1 2][3 4]' is a typo."""
    depth = 0
    for i, ch in enumerate(values):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise UsageError(f"input {text!r}: unbalanced brackets: ']' at character "
                                 f"{i + 1} of the values closes nothing")
    if depth:
        raise UsageError(f"input {text!r}: unbalanced brackets: {depth} '[' left open; "
                         f"close each one, e.g. 2x2xf32=[[1 2][3 4]]")


def _zeros(shape: tuple[int, ...], dtype: str, text: str) -> np.ndarray:
    import numpy as np

    try:
        return np.zeros(shape, dtype=dtype)
    except (MemoryError, ValueError) as e:  # numpy's "array is too big" is a ValueError
        raise UsageError(f"input {text!r}: cannot allocate a {'x'.join(map(str, shape))} "
                         f"array of {dtype} ({e}); use a smaller shape") from None


def _parse_bool(token: str) -> bool:
    lowered = token.lower()
    if lowered in ("1", "true"):
        return True
    if lowered in ("0", "false"):
        return False
    raise ValueError(f"{token!r} is not a boolean (use 0/1/true/false)")


def _resolve(name: str, base_dir: Path | None) -> Path:
    path = Path(name)
    return path if path.is_absolute() or base_dir is None else base_dir / path


def _read_bytes(path: Path, text: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise UsageError(f"input {text!r}: cannot read {path}: {e.strerror}") from None


def _load_npy(name: str, text: str, base_dir: Path | None) -> np.ndarray:
    import numpy as np

    path = _resolve(name, base_dir)
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
        if magic != b"\x93NUMPY":  # also .npz (a zip) and anything else: say what is read
            if magic.startswith(b"PK"):
                raise UsageError(f"input {text!r}: {path} is an .npz archive; expected one "
                                 f".npy array")
            raise UsageError(f"input {text!r}: {path} is not a .npy array file (@FILE without a "
                             f"type reads one); for raw bytes give their type: "
                             f"--input=4xf32=@{name}")
        value = np.load(path, allow_pickle=False)
    except OSError as e:
        raise UsageError(f"input {text!r}: cannot read {path}: {e}") from None
    except (ValueError, EOFError) as e:  # an empty file is an EOFError
        why = ("it holds Python objects (pickled), which are not read"
               if "pickle" in str(e) else str(e))
        raise UsageError(f"input {text!r}: {path} is not a .npy array file: {why}; save "
                         f"arrays with numpy.save, or give raw bytes a type: "
                         f"--input=4xf32=@FILE.bin") from None
    if not isinstance(value, np.ndarray):
        raise UsageError(f"input {text!r}: {path} is an .npz archive; expected one .npy array")
    return value


def type_string(array: np.ndarray) -> str:
    """``2x3xf32``-style type of an array."""
    elem = _TYPE_NAMES.get(array.dtype.name, array.dtype.name)
    return "x".join([*map(str, array.shape), elem])


def format_output(array: np.ndarray, *, max_elements: int = 1024) -> str:
    """Render an array as ``2x2xf32=[1 2][3 4]``, eliding the middle of large ones."""
    if array.ndim == 0:
        return f"{type_string(array)}={_scalar(array[()])}"
    if array.size == 0:
        return f"{type_string(array)}=[]"
    flat = array.reshape(-1)
    if flat.size > max_elements:
        head = " ".join(_scalar(v) for v in flat[:max_elements])
        return (f"{type_string(array)}=[{head}{' ' if head else ''}...] ({flat.size} elements, "
                f"{max_elements} shown; use --output=@file.npy)")

    def render(a: np.ndarray) -> str:
        if a.ndim == 1:
            return "[" + " ".join(_scalar(v) for v in a) + "]"
        return "[" + "".join(render(s) for s in a) + "]"

    body = render(array)
    # IREE drops the outermost brackets: 2x2xf32=[1 2][3 4]
    if array.ndim > 1 and body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    return f"{type_string(array)}={body}"


def _scalar(v: object) -> str:
    import numpy as np

    if isinstance(v, (bool, np.bool_)):
        return "1" if v else "0"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    return str(v)


def write_output(array: np.ndarray, target: str, *, base_dir: Path | None = None) -> Path:
    """Write an output to ``@file.npy`` (or a raw ``@file.bin``); returns the path."""
    import numpy as np

    if not target.startswith("@"):
        raise UsageError(f"--output {target!r}: expected '@FILE.npy' or '@FILE.bin'")
    path = _resolve(target[1:], base_dir)
    try:
        if path.suffix == ".npy":
            np.save(path, array, allow_pickle=False)
        else:
            path.write_bytes(np.ascontiguousarray(array).tobytes())
    except OSError as e:
        raise UsageError(f"--output {target!r}: cannot write {path}: {e.strerror}") from None
    return path
