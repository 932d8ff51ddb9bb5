"""`mixed_precision="auto"`: the CPU-flag check, the probe, the estimate.

The CPU flags, the GPU check, the probe and the timer are faked, so that
these tests decide the same on every machine; one test runs a real probe
of a tiny model end to end.
"""

import csv

import numpy as np
import pytest

from fcn_experiments.config import PRECISIONS
from fcn_experiments.config import make_config
from fcn_experiments.reporting import results
from fcn_experiments.training import precision


def _no_gpu():
    return False


class _Probe:
    """A fake probe returning fixed images/s, recording its calls."""

    def __init__(self, rates):
        self.rates = rates
        self.calls = []

    def __call__(self, policies):
        self.calls.append(tuple(policies))
        return {policy: self.rates[policy] for policy in policies}


def _flags(*names):
    return lambda: {"fpu", "sse2", "avx2", *names}


def test_no_bf16_flags_is_float32_without_a_probe():
    probe = _Probe({"float32": 10.0, "mixed_bfloat16": 100.0})
    choice = precision.choose_precision(
        "auto", probe, cpu_flags=_flags("avx512f"), gpu=_no_gpu
    )
    assert choice.policy == "float32"
    assert "no native bf16" in choice.reason
    assert probe.calls == []  # Not even timed: emulated bf16 is slow.


@pytest.mark.parametrize("flag", precision.BF16_FLAGS)
def test_bf16_flag_and_faster_probe_is_bf16(flag):
    probe = _Probe({"float32": 10.0, "mixed_bfloat16": 15.0})
    choice = precision.choose_precision(
        "auto", probe, cpu_flags=_flags(flag), gpu=_no_gpu
    )
    assert choice.policy == "mixed_bfloat16"
    assert flag in choice.reason and "1.50x" in choice.reason
    assert choice.images_per_s == 15.0
    assert probe.calls == [("float32", "mixed_bfloat16")]


@pytest.mark.parametrize("bf16_rate", [4.0, 10.0, 10.5])
def test_bf16_flag_but_slower_or_equal_probe_is_float32(bf16_rate):
    probe = _Probe({"float32": 10.0, "mixed_bfloat16": bf16_rate})
    choice = precision.choose_precision(
        "auto", probe, cpu_flags=_flags("avx512_bf16"), gpu=_no_gpu
    )
    assert choice.policy == "float32"
    assert "below the 1.1x needed" in choice.reason
    assert choice.images_per_s == 10.0


def test_bf16_flag_without_probe_is_float32():
    choice = precision.choose_precision(
        "auto", None, cpu_flags=_flags("amx_bf16"), gpu=_no_gpu
    )
    assert choice.policy == "float32"
    assert "no probe" in choice.reason


def test_gpu_is_float16_without_flags_or_probe():
    probe = _Probe({})

    def flags():
        raise AssertionError("the CPU flags were read on a GPU machine")

    choice = precision.choose_precision(
        "auto", probe, cpu_flags=flags, gpu=lambda: True
    )
    assert choice.policy == "mixed_float16"
    assert probe.calls == []


def test_unknown_flags_are_float32():
    probe = _Probe({"float32": 10.0, "mixed_bfloat16": 100.0})
    choice = precision.choose_precision(
        "auto", probe, cpu_flags=lambda: None, gpu=_no_gpu
    )
    assert choice.policy == "float32"
    assert "cannot be read" in choice.reason
    assert probe.calls == []


@pytest.mark.parametrize("policy", [p for p in PRECISIONS if p != "auto"])
def test_explicit_policy_is_kept(policy):
    def never():
        raise AssertionError("an explicit policy consulted the machine")

    choice = precision.choose_precision(policy, never, cpu_flags=never, gpu=never)
    assert choice == precision.PrecisionChoice(policy, "as requested")


def test_read_cpu_flags(tmp_path, monkeypatch):
    monkeypatch.setattr(precision.sys, "platform", "linux")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\n"
        "flags\t\t: fpu sse2 avx512f avx512_bf16\n\n"
        "processor\t: 1\nflags\t\t: fpu sse2 avx512f avx512_bf16\n"
    )
    assert precision.read_cpu_flags(str(cpuinfo)) == {
        "fpu", "sse2", "avx512f", "avx512_bf16"
    }
    assert precision.read_cpu_flags(str(tmp_path / "missing")) is None
    monkeypatch.setattr(precision.sys, "platform", "darwin")
    assert precision.read_cpu_flags(str(cpuinfo)) is None


class _FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class _FakeModel:
    """Each training step advances the fake clock by its own step time."""

    def __init__(self, clock, step_seconds):
        self.clock, self.step_seconds, self.steps = clock, step_seconds, 0

    def train_on_batch(self, x, y):
        self.steps += 1
        self.clock.now += self.step_seconds.pop(0) if isinstance(
            self.step_seconds, list
        ) else self.step_seconds


def test_time_training_takes_the_best_round_per_policy():
    clock = _FakeClock()
    # float32: warm-up 9 s, then rounds of 2 steps at 1 s then 0.5 s.
    step_times = {
        "float32": [9.0, 1.0, 1.0, 0.5, 0.5],
        "mixed_bfloat16": [9.0, 2.0, 2.0, 4.0, 4.0],
    }
    models = {}

    def build(policy):
        models[policy] = _FakeModel(clock, step_times[policy])
        return models[policy]

    x, y = np.zeros((4, 8, 8, 3)), np.zeros(4)
    rates = precision.time_training(
        build, x, y, ("float32", "mixed_bfloat16"),
        warmup=1, steps=2, rounds=2, timer=clock,
    )
    assert rates == {"float32": 8 / 1.0, "mixed_bfloat16": 8 / 4.0}
    assert all(model.steps == 5 for model in models.values())


def test_epoch_estimate_scales_with_pixels_and_crops():
    assert precision.epoch_estimate(10.0, 600, 224, 224) == 60.0
    assert precision.epoch_estimate(10.0, 600, 448, 224) == 240.0
    assert precision.epoch_estimate(10.0, 600, 336, 224, crops=3) == 405.0
    assert precision.estimate_line(405.0) == (
        "about 7 min per epoch of training on this CPU"
    )
    assert precision.estimate_line(45.2) == (
        "about 45 s per epoch of training on this CPU"
    )


def test_auto_is_the_default_and_resumes_like_float32():
    assert make_config("quick").mixed_precision == "auto"
    assert make_config("paper").mixed_precision == "auto"
    assert make_config("tiny").mixed_precision == "float32"
    auto = make_config("quick").fingerprint()
    assert auto == make_config("quick", mixed_precision="float32").fingerprint()
    bf16 = make_config("quick", mixed_precision="mixed_bfloat16").fingerprint()
    assert bf16["mixed_precision"] == "mixed_bfloat16"
    with pytest.raises(ValueError, match="Received: mixed_precision='bf16'"):
        make_config("quick", mixed_precision="bf16")


def test_cli_accepts_auto():
    from fcn_experiments.cli import build_parser

    args = build_parser().parse_args(["run", "--mixed-precision", "auto"])
    assert args.mixed_precision == "auto"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--mixed-precision", "bf16"])


def test_results_record_the_reason_and_old_files_still_read(tmp_path):
    row = {field: 1 for field in results.FIELDS}
    row.update(
        task="regression", mixed_precision="mixed_bfloat16", precision_reason="why"
    )
    old_row = dict(row)
    del old_row["mixed_precision"], old_row["precision_reason"]
    results.write_results([row, old_row], str(tmp_path))
    read = results.read_results(str(tmp_path))
    assert [r["mixed_precision"] for r in read] == ["mixed_bfloat16", "float32"]
    assert [r["precision_reason"] for r in read] == ["why", ""]
    # A results.csv written before the reason column existed.
    old_fields = [f for f in results.FIELDS if f != "precision_reason"]
    with open(tmp_path / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=old_fields)
        writer.writeheader()
        writer.writerow({k: old_row.get(k, "float32") for k in old_fields})
    (read,) = results.read_results(str(tmp_path))
    assert read["mixed_precision"] == "float32"
    assert "precision_reason" not in read


def test_resolve_eager_run_times_nothing_and_says_why():
    lines = []
    config = make_config("tiny", mixed_precision="auto")
    choice = precision.resolve(
        config, 2, say=lines.append, cpu_flags=_flags("avx512_bf16"), gpu=_no_gpu
    )
    assert choice.policy == "float32" and choice.images_per_s is None
    assert lines == [f"Precision: float32 ({choice.reason})"]


def test_real_probe_of_a_tiny_model_returns_a_decision():
    """A real probe (MobileNetV2 alpha 0.35 at 32 px, batch 4) end to end:
    the flags say bf16, so it times both policies and picks one."""
    import keras

    lines = []
    config = make_config(
        "tiny", mixed_precision="auto", batch_size=4, run_eagerly=False
    )
    before = keras.mixed_precision.global_policy().name
    choice = precision.resolve(
        config, 2, say=lines.append, cpu_flags=_flags("avx512_bf16"), gpu=_no_gpu
    )
    assert choice.policy in ("float32", "mixed_bfloat16")
    assert "the probe trained" in choice.reason
    assert choice.images_per_s > 0
    assert len(lines) == 1 and lines[0].startswith(f"Precision: {choice.policy} (")
    # The probe leaves the global policy as it found it.
    assert keras.mixed_precision.global_policy().name == before


def test_resolve_times_the_estimate_only_when_asked(monkeypatch):
    """Experiments side by side time their own epochs: a set policy is then
    not timed for the estimate line (the probe costs a trace and steps)."""
    timed = []

    def fake_probe(config, num_classes):
        def probe(policies):
            timed.extend(policies)
            return dict.fromkeys(policies, 100.0)
        return probe

    monkeypatch.setattr(precision, "make_probe", fake_probe)
    config = make_config("tiny", mixed_precision="float32", run_eagerly=False)
    for estimate, rate, calls in ((True, 100.0, ["float32"]), (False, None, [])):
        timed.clear()
        choice = precision.resolve(
            config, 2, say=lambda line: None, cpu_flags=_flags(""),
            gpu=_no_gpu, estimate=estimate,
        )
        assert (choice.policy, choice.images_per_s, timed) == (
            "float32", rate, calls
        )
