"""Regression tests for the CLI items of issue 6: --print-max-elements, --input syntax errors,
u16/u32/u64 inputs, usage errors exit 2 as one line, --debug after the subcommand,
hal --version."""

from __future__ import annotations

import numpy as np
import pytest

from hal_core.errors import UsageError
from hal_core.runtime.io_format import format_output, parse_input


def test_print_max_elements_is_honoured(hal, modules):
    args = ("run", f"--module={modules['add']}", "--input=4xf32=1 2 3 4", "--input=4xf32=0")
    status, out, _ = hal(*args, "--print-max-elements=2")
    assert status == 0
    assert out.strip() == "result[0]: 4xf32=[1 2 ...] (4 elements, 2 shown; use " \
                          "--output=@file.npy)"
    status, out, _ = hal(*args, "--print-max-elements=4")
    assert out.strip() == "result[0]: 4xf32=[1 2 3 4]"
    status, _, err = hal(*args, "--print-max-elements=-1")
    assert status == 2 and ">= 0" in err


def test_format_output_shows_at_most_n_elements():
    text = format_output(np.arange(100, dtype=np.int32), max_elements=12)
    assert text.startswith("100xi32=[0 1 2 3 4 5 6 7 8 9 10 11 ...]")
    assert "12 shown" in text
    assert format_output(np.arange(3, dtype=np.int32), max_elements=0).startswith("3xi32=[...]")


@pytest.mark.parametrize("text", ["2x2xf32=[[1 2][3 4]", "2x2xf32=[1 2]]3 4]", "4xf32=1 2 3 4]",
                                  "2x2xf32=[[1 2]][[3 4]"])
def test_unbalanced_brackets_are_refused(text):
    with pytest.raises(UsageError, match="unbalanced brackets"):
        parse_input(text)


def test_balanced_brackets_still_parse():
    np.testing.assert_array_equal(parse_input("2x2xf32=[[1 2][3 4]]"), [[1, 2], [3, 4]])


def test_raw_bytes_without_a_type_get_a_hint(tmp_path):
    raw = tmp_path / "x.bin"
    np.arange(4, dtype=np.float32).tofile(raw)
    with pytest.raises(UsageError, match=r"is not a \.npy array file.*4xf32=@") as info:
        parse_input(f"@{raw}")
    assert "pickle" not in str(info.value)
    np.testing.assert_array_equal(parse_input(f"4xf32=@{raw}"), np.arange(4, dtype=np.float32))


def test_pickled_npy_is_refused_without_numpys_message(tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UsageError, match="Python objects") as info:
        parse_input(f"@{path}")
    assert "allow_pickle" not in str(info.value)


@pytest.mark.parametrize("spelling, dtype", [("u16", np.uint16), ("u32", np.uint32),
                                             ("u64", np.uint64), ("ui64", np.uint64)])
def test_unsigned_element_types_are_accepted(spelling, dtype):
    value = parse_input(f"2x{spelling}=1 {np.iinfo(dtype).max}")
    assert value.dtype == dtype
    assert value[1] == np.iinfo(dtype).max


def test_an_unknown_target_option_is_a_usage_error(hal, tmp_path):
    src = tmp_path / "m.mlir"
    src.write_text("func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> {\n"
                   "  %0 = exp %a : (tensor<2xf32>) -> tensor<2xf32>\n"
                   "  return %0 : tensor<2xf32>\n}\n")
    status, _, err = hal("compile", str(src), "--target-backends=vmvx", "--vmvx-bogus=1",
                         "-o", str(tmp_path / "m.halm"))
    assert status == 2
    assert err.count("\n") == 1 and "vmvx has no options" in err


def test_compile_usage_errors_are_one_line_like_the_other_commands(hal):
    for args in (("compile",), ("run", "--no-such-flag"), ("drivers", "list", "--bogus")):
        status, out, err = hal(*args)
        assert status == 2, args
        assert err.startswith("hal: error: ") and err.count("\n") == 1, (args, err)
        assert "usage:" not in err and out == ""


def test_debug_after_the_subcommand_is_accepted(hal, modules):
    status, out, err = hal("run", f"--module={modules['add']}", "--input=4xf32=1",
                           "--input=4xf32=2", "--debug")
    assert status == 0, err
    assert "Traceback" not in err
    assert out.strip() == "result[0]: 4xf32=[3 3 3 3]"
    status, _, err = hal("run", f"--module={modules['add']}", "--input=4xf32=1", "--debug")
    assert status == 2 and "Traceback" in err  # --debug asks for it on a real error
    for args in (("drivers", "list"), ("plugins", "list"), ("devices", "list", "local-sync")):
        status, _, err = hal(*args, "--debug")
        assert status == 0 and "Traceback" not in err, (args, err)


def test_a_refused_command_line_gets_no_traceback_even_with_debug(hal):
    status, out, err = hal("run", "--no-such-flag", "--debug")
    assert status == 2
    assert "Traceback" not in err and err.count("\n") == 1


def test_version(hal):
    import hal_core
    from hal_core.hookspecs import HAL_PLUGIN_API_VERSION

    status, out, _ = hal("--version")
    assert status == 0
    assert out.strip() == f"hal {hal_core.__version__} (hal-core, plugin API " \
                          f"{HAL_PLUGIN_API_VERSION})"
