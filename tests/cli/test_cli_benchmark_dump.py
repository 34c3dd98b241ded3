"""``hal benchmark`` and ``hal dump``."""

from __future__ import annotations

import json


def test_benchmark_text(hal, modules):
    status, out, err = hal("benchmark", "--device=local-sync", str(modules["add"]),
                           "--input=4xf32=1", "--input=4xf32=2", "--repetitions=20",
                           "--min-time=0")
    assert status == 0, err
    assert out.startswith("add.main on local-sync:// (async): 20 calls, median ")
    assert "p90 " in out and out.endswith(" per call\n")


def test_benchmark_json_old_spellings(hal, modules):
    status, out, err = hal("benchmark", "--driver=local-task", f"--module_file={modules['inline']}",
                           "--entry_function=main", "--function_input=4xf32=1",
                           "--function_input=4xf32=2", "--repetitions=7", "--min-time=0", "--json")
    assert status == 0, err
    data = json.loads(out)
    assert data["calls"] == 7 and data["execution_model"] == "inline"
    assert 0 < data["min_us"] <= data["median_us"] <= data["p90_us"]


def test_benchmark_rejects_bad_counts(hal, modules):
    status, _, err = hal("benchmark", str(modules["add"]), "--repetitions=0")
    assert status == 2 and "--repetitions must be at least 1" in err


def test_dump_text(hal, modules):
    status, out, err = hal("dump", str(modules["chain"]))
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("module 'chain': format version 2, async execution model, ")
    assert "  main(tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>)" in lines
    assert "    host program: 2 dispatch, 1 copy, 1 barrier; transient 64 bytes" in lines
    assert any("variant 0: format vmvx-bytecode (target vmvx), requires: none" in x
               for x in lines)
    assert any("entry 1 mul: workgroups" in x for x in lines)
    assert "  [0] c: 24 bytes" in lines and "peak transient bytes: 64" in lines


def test_dump_json(hal, modules):
    status, out, _ = hal("dump", "--json", str(modules["add"]))
    data = json.loads(out)
    assert status == 0
    assert data["file_bytes"] == modules["add"].stat().st_size
    assert data["executables"][0]["variants"][0]["format"] == "vmvx-bytecode"
    assert data["functions"][0]["name"] == "main"


def test_dump_corrupted_file(hal, modules, tmp_path):
    data = bytearray(modules["add"].read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.halm"
    bad.write_bytes(bytes(data))
    status, _, err = hal("dump", str(bad))
    assert status == 1 and err.startswith("hal: error: ") and err.count("\n") == 1
    status, _, err = hal("dump", str(tmp_path / "truncated.halm"))
    assert status == 1
