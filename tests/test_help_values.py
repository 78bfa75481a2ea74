"""Every value a help text names works: the test reads each subcommand's parser, takes the values its help
offers (choices, 'a, b or c' lists, quoted values, e.g. examples) and runs the command with each one."""

from __future__ import annotations

import argparse
import json
import re

import pytest

from cnnsize.cli import build_parser, main

TINY = """name: tiny
input: [3, 32, 32]
fit: floor
vars: {width: 8}
layers:
  - conv: {name: conv1, filters: width, kernel: 3, pad: 1}
  - relu
  - maxpool: {kernel: 2}
  - global_avgpool
  - fc: {units: 10}
"""
TORCH_COMMANDS = {"validate", "bench", "calibrate", "import"}  # run by the slow test below (they build in torch)
HEAVY = {"specs", "plot"}  # every bundled spec, matplotlib: one value of each in the default set, the rest slow
SKIP_OPTIONS = {"-o", "--output", "--freeze-until", "-l", "--layer", "--name", "--threads",  # names and files
                "--kwargs"}  # its example names a model's own argument: tests/test_import_arguments.py runs it
_TOKEN = r"[a-z0-9][\w.:-]*"
_LIST = re.compile(rf"^{_TOKEN}(?:, {_TOKEN})*(?:,? or {_TOKEN})?$")


def _walk(parser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))
        elif action.option_strings and action.nargs != 0 and action.help not in (None, argparse.SUPPRESS):
            yield path, action


def named_values(action) -> set[str]:
    """The values a help text names: its choices, a leading list ('a, b or c'), parenthesised lists, quoted
    values and e.g./comma-separated examples. Placeholders (N, FILE, cuda:N) are not values."""
    text = " ".join(action.help.split())
    found = set(action.choices or ())
    plain = re.sub(r"\([^()]*\)", "", text).split(";")[0]
    plain = " ".join(plain.split(": ")[-1].replace(" ,", ",").split())
    if _LIST.match(plain) and ("," in plain or " or " in plain):
        found |= set(re.split(r",? or |, ", plain))
    for inner in re.findall(r"\(([^()]*)\)", text):
        head, _, tail = inner.rpartition(": ")
        if head in ("", "of") and _LIST.match(tail) and "," in tail:
            inner = tail
            found |= set(re.split(r",? or |, ", inner))
    found |= set(re.findall(r"'([\w.:-]+)'", text))
    for example in re.findall(r"(?:e\.g\.|comma-separated:) ((?:--\S+ )?[^\s,()]+(?:,[^\s,()]+)*)", text):
        found.add(example.split()[-1])
    return {v for v in found if not re.search(r"(^|:)[A-Z]+$", v) and v != "..." and not v.startswith(".")}


def _cases(torch: bool):
    out = []
    for path, action in _walk(build_parser(None)):
        if (path[0] in TORCH_COMMANDS) != torch or set(action.option_strings) & SKIP_OPTIONS:
            continue
        for i, value in enumerate(sorted(named_values(action))):
            marks = [pytest.mark.slow] if path[0] in HEAVY and i and not torch else []
            out.append(pytest.param(path, action.option_strings[-1], value, marks=marks,
                                    id=f"{' '.join(path)} {action.option_strings[-1]} {value}"))
    return out


def base_args(path, spec: str, tmp_path) -> list[str]:
    """A small working invocation of each command, to which one option is added."""
    first = path[0]
    if first == "calc":
        kind = path[1]
        return {"conv": ["calc", "conv", "-i", "4x32x32", "-k", "8", "-F", "3"],
                "pool": ["calc", "pool", "-i", "4x32x32", "-F", "2"],
                "fc": ["calc", "fc", "-i", "4096", "-u", "10"],
                "locally-connected": ["calc", "locally-connected", "-i", "4x32x32", "-k", "8", "-F", "3"]}[kind]
    if first == "specs":
        return ["specs"]
    if first == "plot":
        return ["plot", spec, "-o", str(tmp_path / "p.svg")]
    if first == "draw":
        return ["draw", spec, "-o", str(tmp_path / "d.svg")]
    if first == "schema":
        return ["schema"]
    if first == "fit":
        return ["fit", spec, "--max", "64"]
    if first == "validate":
        return ["validate", spec, "--runs", "0"]
    if first == "bench":
        return ["bench", spec, "--runs", "1", "--warmup", "0", "--no-peak"]
    if first == "calibrate":
        return ["calibrate", "--runs", "1", "-o", str(tmp_path / "profile.json")]
    if first == "plan":  # several GPUs in nodes of two: every --sharding is then meaningful
        return ["plan", spec, "--device", "h100", "-b", "2", "--gpus", "4", "--gpus-per-node", "2"]
    return [first, spec]


def _run(path, option, value, tmp_path, capsys, monkeypatch):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY, encoding="utf-8")
    monkeypatch.setenv("CNNSIZE_CONFIG_DIR", str(tmp_path / "config"))
    _calibrated(tmp_path / "config")
    if path[0] == "plot":
        pytest.importorskip("matplotlib")
    # validate's --sharding runs processes that stand for GPUs: four, in nodes of two (every scheme meaningful)
    several = ["--gpus", "4", "--gpus-per-node", "2"] if path[0] == "validate" and option == "--sharding" else []
    code = main([*base_args(path, str(spec), tmp_path), *several, option, value])
    return code, capsys.readouterr()


def _calibrated(folder) -> None:
    """The profiles 'cnnsize calibrate' saves, for the help's cpu/cuda/local (their figures are not checked here)."""
    from cnnsize.passes.latency import DATASHEETS

    (folder / "profiles").mkdir(parents=True, exist_ok=True)
    for name in ("cpu", "cuda"):
        data = dict(DATASHEETS["t4"].to_dict(), name=name, source="measured: a test's stand-in")
        (folder / "profiles" / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize(("path", "option", "value"), _cases(torch=False))
def test_every_value_a_help_text_names_works(path, option, value, tmp_path, capsys, monkeypatch):
    code, out = _run(path, option, value, tmp_path, capsys, monkeypatch)
    assert code == 0, (path, option, value, out.err)


@pytest.mark.slow
@pytest.mark.parametrize(("path", "option", "value"), _cases(torch=True))
def test_every_value_a_torch_command_help_names_works(path, option, value, tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    import torch

    code, out = _run(path, option, value, tmp_path, capsys, monkeypatch)
    for _ in range(2):  # a measurement disturbed by other work is refused with this advice: run again, as users do
        if path != ("calibrate",) or code != 2 or "run again on a quieter machine" not in out.err:
            break
        code, out = _run(path, option, value, tmp_path, capsys, monkeypatch)
    if value.startswith("cuda") and not torch.cuda.is_available():  # understood; this machine has none
        assert code == 2 and "cuda" in out.err.lower(), out.err
        return
    if path == ("validate",) and value == "fp16-mixed" and not torch.cuda.is_available():
        # fp16 autocast is measured on CUDA only (the CPU's autocast runs bfloat16): refused in one line, as its
        # help and docs/memory.md say; benchmarks/gpu_training.py measures it where a GPU is
        assert code == 2 and out.err.count("\n") == 1 and "CUDA" in out.err, out.err
        return
    if path == ("calibrate",) and value in ("float16", "bfloat16") and code == 2:
        # a CPU without fast half-precision kernels has no peak to calibrate against: refused in one line
        assert out.err.count("\n") == 1 and value in out.err and "Traceback" not in out.err, out.err
        return
    assert code == 0, (path, option, value, out.err)


def test_the_help_lists_are_read():
    """The extraction itself: the report's --device-profile and --dtype, and calc's --pad."""
    actions = {(p, a.option_strings[-1]): a for p, a in _walk(build_parser(None))}
    assert {"a100", "t4", "rtx4090", "float16", "int8"} & named_values(actions[("report",), "--device-profile"]) \
        == {"a100", "t4", "rtx4090"}
    assert named_values(actions[("report",), "--dtype"]) == {"float32", "float16", "bfloat16", "int8", "float64"}
    assert {"same", "valid"} <= named_values(actions[("calc", "conv"), "--pad"])


def test_local_device_profile_is_this_machines_calibrated_one(tmp_path, capsys, monkeypatch):
    """'local' (named by report -h) is the profile calibrate saved here; without one, a line saying to calibrate."""
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY, encoding="utf-8")
    monkeypatch.setenv("CNNSIZE_CONFIG_DIR", str(tmp_path / "config"))
    assert main(["report", str(spec), "--device-profile", "local"]) == 2
    err = capsys.readouterr().err
    assert "cnnsize calibrate" in err and len(err.strip().splitlines()) == 1
    _calibrated(tmp_path / "config")
    (tmp_path / "config" / "profiles" / "cuda.json").unlink()
    assert main(["report", str(spec), "--device-profile", "local", "-f", "json"]) == 0
    local = json.loads(capsys.readouterr().out)
    assert main(["report", str(spec), "--device-profile", "cpu", "-f", "json"]) == 0
    assert local == json.loads(capsys.readouterr().out) and local["totals"]["predicted_seconds"] > 0
