"""An experiment's folder: what training records there, and reads back.

Each experiment owns a folder `<output_dir>/exp<k>_<name>/`:

- `config.json`: the settings fingerprint it was trained with;
- `training_log.csv`: Keras' CSVLogger, one row per epoch;
- `tensorboard/`: Keras' TensorBoard logs (`tensorboard --logdir <output_dir>`);
- `best_e<epoch>.weights.h5` + `best.json`: the best epoch on validation;
- `backup/`: Keras' BackupAndRestore state after the last finished epoch;
- `result.json`: written last, once the test set has been evaluated. Its
  presence marks the experiment finished, so a re-run skips it;
- `best.keras` (+ `best.keras.json`): the best epoch's model, which
  `predict`, `export` and the figures load.
"""

import csv
import glob
import json
import os
import shutil

RESULT_FILE = "result.json"
CONFIG_FILE = "config.json"
LOG_FILE = "training_log.csv"
TENSORBOARD_DIR = "tensorboard"
BEST_FILE = "best.json"
BACKUP_DIR = "backup"


def write_json_atomic(path, data):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def _read_json(path):
    """The JSON in `path`, or None where there is no such file."""
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def read_best(folder):
    return _read_json(os.path.join(folder, BEST_FILE))


def remove_stale_best_files(folder, keep):
    for path in glob.glob(os.path.join(folder, "best_e*.weights.h5")):
        if os.path.basename(path) != keep:
            os.remove(path)


def read_log(folder):
    path = os.path.join(folder, LOG_FILE)
    if not os.path.isfile(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def restored_epoch(folder):
    metadata = _read_json(
        os.path.join(folder, BACKUP_DIR, "training_metadata.json")
    )
    return 0 if metadata is None else int(metadata["epoch"])


def cut_log(folder, epochs_kept):
    """Drops log rows of epochs that the backup does not hold (a kill after
    CSVLogger wrote the row, before BackupAndRestore saved the epoch)."""
    path = os.path.join(folder, LOG_FILE)
    rows = read_log(folder)
    if not rows:
        return
    kept = [row for row in rows if int(row["epoch"]) < epochs_kept]
    if len(kept) == len(rows):
        return
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)


class SettingsChangedError(RuntimeError):
    """An experiment folder holds a run made with other settings."""


def load_finished(folder, fingerprint):
    """The result of a finished experiment, or None if it has not finished.

    Raises:
        SettingsChangedError: the folder holds a run with other settings.
    """
    check_fingerprint(folder, fingerprint)
    return _read_json(os.path.join(folder, RESULT_FILE))


def check_fingerprint(folder, fingerprint):
    path = os.path.join(folder, CONFIG_FILE)
    if not os.path.isfile(path):
        return
    with open(path) as f:
        saved = json.load(f)
    if saved != fingerprint:
        changed = sorted(
            key
            for key in set(saved) | set(fingerprint)
            if saved.get(key) != fingerprint.get(key)
        )
        details = ", ".join(
            f"{k}: {saved.get(k)!r} -> {fingerprint.get(k)!r}" for k in changed
        )
        raise SettingsChangedError(
            f"{folder} holds an experiment trained with other settings "
            f"({details}). Pass force=True to retrain it, or choose another "
            "output_dir."
        )


def finish(folder, result):
    """Marks an experiment finished (result.json), then drops its backup."""
    write_json_atomic(os.path.join(folder, RESULT_FILE), result)
    shutil.rmtree(os.path.join(folder, BACKUP_DIR), ignore_errors=True)


def reset(folder):
    """Deletes an experiment's folder (force=True)."""
    shutil.rmtree(folder, ignore_errors=True)
