import numpy as np
import pytest

from hal_core.errors import UsageError
from hal_core.runtime.io_format import format_output, parse_input, write_output


@pytest.mark.parametrize(
    "text",
    ["2x2xf32=1 2 3 4", "2x2xf32=[[1 2][3 4]]", "2x2xf32=[[1, 2], [3, 4]]", "2x2xf32=1,2,3,4"],
)
def test_value_forms(text):
    a = parse_input(text)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, [[1, 2], [3, 4]])


def test_splat_scalar_and_zeros():
    a = parse_input("1x3x4x4xf32=0.5")
    assert a.shape == (1, 3, 4, 4) and np.all(a == 0.5)
    s = parse_input("i32=7")
    assert s.shape == () and s.dtype == np.int32 and int(s) == 7
    z = parse_input("4xi8")
    assert z.shape == (4,) and z.dtype == np.int8 and not z.any()
    b = parse_input("3xi1=1 0 true")
    assert b.dtype == np.bool_ and b.tolist() == [True, False, True]


def test_npy_and_raw_files(tmp_path):
    x = np.arange(6, dtype=np.int64).reshape(2, 3)
    np.save(tmp_path / "x.npy", x)
    np.testing.assert_array_equal(parse_input(f"@{tmp_path / 'x.npy'}"), x)
    (tmp_path / "x.bin").write_bytes(x.astype(np.float32).tobytes())
    np.testing.assert_array_equal(parse_input("2x3xf32=@x.bin", base_dir=tmp_path), x)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("2x2xq32=1", "element types"),
        ("2x2xf32=1 2 3", "needs 4 values"),
        ("2xi32=1 x", "expected numbers"),
        ("2xi8=1 300", "does not fit"),
        ("@/nonexistent/x.npy", "cannot read"),
        ("2xf32=@/nonexistent.bin", "cannot read"),
    ],
)
def test_bad_inputs(text, fragment):
    with pytest.raises(UsageError, match=fragment):
        parse_input(text)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("4xui8=-1", "does not fit uint8"),  # a splat value is range-checked like a list
        ("99999999999x99999999999xf32", "cannot allocate"),
        ("99999999999x99999999999xf32=1", "cannot allocate"),
        ("99999999999999999999999999xf32", "cannot allocate"),
    ],
)
def test_unrepresentable_inputs_are_usage_errors(text, fragment):
    with pytest.raises(UsageError, match=fragment):
        parse_input(text)


def test_empty_npy_file(tmp_path):
    (tmp_path / "x.npy").write_bytes(b"")
    with pytest.raises(UsageError, match="is not a .npy array file"):
        parse_input("@x.npy", base_dir=tmp_path)


def test_raw_file_size_mismatch(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"\0" * 5)
    with pytest.raises(UsageError, match="holds 5 bytes, expected 16"):
        parse_input("4xf32=@x.bin", base_dir=tmp_path)


def test_format_output():
    assert format_output(np.array([[1, 2], [3, 4]], np.float32)) == "2x2xf32=[1 2][3 4]"
    assert format_output(np.array([1, 0], np.bool_)) == "2xi1=[1 0]"
    assert format_output(np.array(3, np.int64)) == "i64=3"
    assert format_output(np.zeros((0, 3), np.float32)) == "0x3xf32=[]"
    assert "use --output" in format_output(np.zeros(5000, np.float32))


def test_round_trip_through_text_and_file(tmp_path):
    a = np.array([[1.5, -2], [3, 4e-3]], np.float32)
    np.testing.assert_array_equal(parse_input(format_output(a)), a)
    path = write_output(a, "@o.npy", base_dir=tmp_path)
    np.testing.assert_array_equal(np.load(path), a)
