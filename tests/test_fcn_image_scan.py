"""The bad-file scan of `fcn_image_dataset_from_directory` reads each file
once per process: later builds from the same, unchanged files reuse what it
learnt (the framework builds train, validation and test for every
experiment)."""

import multiprocessing
import os
import warnings

import pytest

import keras
from keras.src.utils import fcn_image_files
from keras.src.utils import fcn_image_scan

from loader_test_images import photo
from loader_test_images import write_bad_files
from loader_test_images import write_convertible_files
from loader_test_images import write_photos


def _build(directory):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = keras.utils.fcn_image_dataset_from_directory(
            directory, image_size=64, batch_size=4, shuffle=False,
            verbose=False,
        )  # fmt: skip
    return ds, [str(w.message) for w in caught if "Skipped" in str(w.message)]


def test_unchanged_files_are_read_once_changed_ones_again(tmp_path, monkeypatch):
    paths = write_photos(str(tmp_path))
    bad = os.path.join(os.path.dirname(paths[0]), "broken.jpg")
    with open(bad, "w") as f:
        f.write("not an image\n")
    inspected = []
    inspect = fcn_image_scan.inspect_keyed  # Every read of a file.

    def counting(path):
        inspected.append(path)
        return inspect(path)

    monkeypatch.setattr(fcn_image_scan, "inspect_keyed", counting)
    first, first_skipped = _build(str(tmp_path))
    assert sorted(inspected) == sorted(paths + [bad])
    assert len(first_skipped) == 1 and "broken.jpg" in first_skipped[0]

    inspected.clear()
    second, second_skipped = _build(str(tmp_path))
    assert inspected == []
    # Same files, same verdicts: the bad file is still skipped with its
    # warning, and the images are the same.
    assert second_skipped == first_skipped
    assert second.file_paths == first.file_paths
    for a, b in zip(first, second):
        assert (a[0].numpy() == b[0].numpy()).all()

    # A file rewritten (another size) is inspected again: the repaired
    # file now comes in.
    photo("coffee", (96, 64)).save(bad, quality=90)
    inspected.clear()
    third, third_skipped = _build(str(tmp_path))
    assert inspected == [bad]
    assert third_skipped == [] and bad in third.file_paths
    assert fcn_image_scan.remembered(bad).width == 96


def test_worker_processes_give_the_same_verdicts(tmp_path, monkeypatch):
    if ("fork" not in multiprocessing.get_all_start_methods()
            or len(os.sched_getaffinity(0)) < 2):
        pytest.skip("the scan forks worker processes on Linux with 2+ cores")
    paths = write_photos(str(tmp_path / "photos"))
    paths += sorted(write_bad_files(str(tmp_path / "bad")).values())
    paths += sorted(p for p, _ in write_convertible_files(str(tmp_path / "c")).values())
    serial = [fcn_image_scan.inspect_keyed(path) for path in paths]
    inspect = fcn_image_scan.inspect_keyed
    pids = tmp_path / "pids.txt"

    def recording(path):  # Runs in the forked workers.
        with open(pids, "a") as f:
            f.write(f"{os.getpid()}\n")
        return inspect(path)

    monkeypatch.setattr(fcn_image_scan, "PROCESS_SCAN_MIN_FILES", 1)
    monkeypatch.setattr(fcn_image_scan, "inspect_keyed", recording)
    forked = fcn_image_scan.inspect_many(paths)
    workers = pids.read_text().split()
    assert len(workers) == len(paths) and str(os.getpid()) not in workers
    monkeypatch.setattr(fcn_image_scan, "inspect_keyed", inspect)
    assert len(forked) == len(serial) == len(paths)
    for path, (key, verdict), (serial_key, serial_verdict) in zip(paths, forked, serial):
        assert key == serial_key, path
        if isinstance(serial_verdict, Exception):
            assert type(verdict) is type(serial_verdict), path
            assert str(verdict) == str(serial_verdict), path
        else:
            assert verdict == serial_verdict, path
            assert type(verdict) is fcn_image_files.ImageInfo

    # A whole build with the workers: the same files and warnings.
    fcn_image_scan.forget_all()
    pooled, pooled_skipped = _build(str(tmp_path))
    monkeypatch.setattr(fcn_image_scan, "PROCESS_SCAN_MIN_FILES", 10**9)
    fcn_image_scan.forget_all()
    plain, plain_skipped = _build(str(tmp_path))
    assert pooled.file_paths == plain.file_paths
    assert sorted(pooled_skipped) == sorted(plain_skipped) and plain_skipped
