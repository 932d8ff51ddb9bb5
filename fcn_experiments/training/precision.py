"""Which Keras dtype policy a run trains under (`mixed_precision="auto"`).

bfloat16 pays off only on CPUs that compute in it natively (AMX or
AVX512_BF16); elsewhere TensorFlow emulates it and training gets several
times slower. Even with the flags it can lose (on a 2-core Zen 4 with
AVX512_BF16 the matmul ceiling doubled, but small convolutions did not), so
`auto` trains a few steps of the run's own model both ways before it picks
bf16. A GPU gets float16, the type its tensor cores run.

The probe's speed also gives the "about N min per epoch" estimate printed
before each experiment trains.
"""

import dataclasses
import os
import sys
import time

import numpy as np

# CPU flags (as Linux names them in /proc/cpuinfo) of native bf16 arithmetic.
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
# bf16 must train at least this much faster in the probe: a tie is noise,
# and float32 is the reference the experiments were measured in.
MIN_SPEEDUP = 1.1


@dataclasses.dataclass(frozen=True)
class PrecisionChoice:
    """The policy a run trains under, why, and the probe's speed of it
    (training images/s at the run's base size; None when nothing was
    timed)."""

    policy: str
    reason: str
    images_per_s: float | None = None


def read_cpu_flags(path="/proc/cpuinfo"):
    """The CPU's feature flags as a set, or None where they cannot be read
    (macOS and Windows have no /proc/cpuinfo)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "flags":
                    return set(value.split())
    except OSError:
        return None
    return None


def gpu_present():
    """Whether the Keras backend sees a GPU."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return jax.default_backend() == "gpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def choose_precision(
    requested,
    probe=None,
    *,
    cpu_flags=read_cpu_flags,
    gpu=gpu_present,
    min_speedup=MIN_SPEEDUP,
):
    """Resolves `requested` (a policy name or `"auto"`) to a `PrecisionChoice`.

    Args:
        requested: `"auto"` or a Keras policy name (kept as it is).
        probe: called with a tuple of policy names, returns `{policy:
            training images/s}`; None: `auto` cannot time bf16 and keeps
            float32.
        cpu_flags: returns the CPU's flags as a set, or None if unknown.
        gpu: returns whether a GPU is present.
        min_speedup: how much faster bf16 must train in the probe.
    """
    if requested != "auto":
        return PrecisionChoice(requested, "as requested")
    if gpu():
        return PrecisionChoice(
            "mixed_float16", "a GPU is present: float16 runs on its tensor cores"
        )
    flags = cpu_flags()
    if flags is None:
        return PrecisionChoice(
            "float32",
            "the CPU's flags cannot be read on this system, so native bf16 "
            "is unknown (mixed_precision='mixed_bfloat16' forces it)",
        )
    native = [flag for flag in BF16_FLAGS if flag in flags]
    if not native:
        return PrecisionChoice(
            "float32",
            f"this CPU has no native bf16 (none of {', '.join(BF16_FLAGS)} "
            "in its flags): bf16 would be emulated, several times slower",
        )
    if probe is None:
        return PrecisionChoice(
            "float32",
            f"this CPU has {'+'.join(native)}, but no probe was run to "
            "show that bf16 trains faster",
        )
    rates = probe(("float32", "mixed_bfloat16"))
    speedup = rates["mixed_bfloat16"] / rates["float32"]
    measured = (
        f"the probe trained {rates['mixed_bfloat16']:.1f} img/s in bf16 vs "
        f"{rates['float32']:.1f} in float32 ({speedup:.2f}x"
    )
    if speedup >= min_speedup:
        return PrecisionChoice(
            "mixed_bfloat16",
            f"this CPU has {'+'.join(native)} and {measured})",
            rates["mixed_bfloat16"],
        )
    return PrecisionChoice(
        "float32",
        f"this CPU has {'+'.join(native)}, but {measured}, below the "
        f"{min_speedup:g}x needed)",
        rates["float32"],
    )


def time_training(
    build_model, x, y, policies, *, warmup=1, steps=3, rounds=2,
    timer=time.perf_counter,
):
    """Training images/s of `build_model(policy)` for each policy.

    Each model takes `warmup` untimed steps (graph tracing), then the
    policies alternate in `rounds` rounds of `steps` steps on the batch
    `(x, y)`; the fastest round counts (the least disturbed by other
    processes).

    Returns:
        `{policy: images/s}`.
    """
    models = {policy: build_model(policy) for policy in policies}
    for model in models.values():
        for _ in range(warmup):
            model.train_on_batch(x, y)
    best = {policy: float("inf") for policy in policies}
    for _ in range(rounds):
        for policy, model in models.items():
            start = timer()
            for _ in range(steps):
                model.train_on_batch(x, y)
            best[policy] = min(best[policy], timer() - start)
    images = len(x) * steps
    return {policy: images / max(seconds, 1e-9) for policy, seconds in best.items()}


def make_probe(config, num_classes):
    """A probe for `choose_precision`: experiment #2's FCN (the run's
    backbone at its base size, random weights) trained at the run's batch
    size on random images, compiled as the framework compiles it."""
    import keras

    from fcn_experiments.models.experiments import build_model
    from fcn_experiments.models.experiments import get_experiment
    from fcn_experiments.models.starting_weights import build_original
    from fcn_experiments.training.loop import compile_options
    from fcn_experiments.training.loop import make_optimizer

    size, batch = config.input_size, config.batch_size
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, (batch, size, size, 3)).astype("float32")
    y = config.task_spec.probe_labels(rng, batch, num_classes)

    def build(policy):
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(policy)
        try:
            original = build_original(config, num_classes)
            model = build_model(get_experiment(2), original, config)
            model.compile(
                optimizer=make_optimizer(config),
                loss=config.task_spec.loss(config),
                **compile_options(config),
            )
        finally:
            keras.mixed_precision.set_global_policy(previous)
        return model

    def probe(policies):
        try:
            return time_training(build, x, y, policies)
        finally:
            keras.backend.clear_session()

    return probe


def epoch_estimate(images_per_s, num_images, size, base_size, *, crops=1):
    """Seconds of one training epoch of `num_images` at `size` px, from a
    speed measured at `base_size` px: the work of an FCN grows with its
    pixels, and multi-crop trains `crops` crops per image."""
    pixels = (size / base_size) ** 2
    return num_images * crops * pixels / images_per_s


def estimate_line(seconds):
    """'about N min per epoch on this CPU' (seconds under two minutes)."""
    if seconds < 120:
        return f"about {max(seconds, 1):.0f} s per epoch of training on this CPU"
    return f"about {seconds / 60:.0f} min per epoch of training on this CPU"


def resolve(
    config,
    num_classes,
    *,
    strategy=None,
    say=print,
    cpu_flags=read_cpu_flags,
    gpu=gpu_present,
    recorded=None,
    estimate=True,
):
    """The run's `PrecisionChoice`, printed in one line by `say`.

    `recorded` (`{"policy", "reason"}` from run.json) is the choice made
    when this run started: a resumed `auto` run keeps it, untimed, so that
    all its epochs train under one policy whatever the load or machine.

    The probe runs for `auto` on a bf16 CPU; the chosen policy alone is
    timed (for the epoch estimate) on other CPUs. Nothing is timed when
    `run_eagerly` is True or "auto" (the tiny test profile), on a GPU, or
    across several replicas (every worker must choose the same policy), nor
    for the estimate alone when `estimate` is False (a quiet run prints no
    estimate; experiments side by side time each epoch themselves, on their
    own threads). `cpu_flags` and `gpu` are as in `choose_precision`.
    """
    if config.mixed_precision == "auto" and recorded is not None:
        choice = PrecisionChoice(
            recorded["policy"],
            f"recorded when this run started: {recorded['reason']}",
        )
        say(f"Precision: {choice.policy} ({choice.reason})")
        return choice
    probe = None
    replicas = getattr(strategy, "num_replicas_in_sync", 1)
    # Not for `run_eagerly` True or "auto": a few tiny steps to debug or test.
    if config.run_eagerly is False and replicas == 1 and not os.environ.get(
        "TF_CONFIG"
    ):
        probe = make_probe(config, num_classes)
    choice = choose_precision(
        config.mixed_precision, probe, cpu_flags=cpu_flags, gpu=gpu
    )
    if (
        estimate
        and choice.images_per_s is None
        and probe is not None
        and choice.policy != "mixed_float16"
    ):
        rate = probe((choice.policy,))[choice.policy]
        choice = dataclasses.replace(choice, images_per_s=rate)
    say(f"Precision: {choice.policy} ({choice.reason})")
    return choice
