"""`status`: what is installed, and how it differs from the manifest and
from extensions/. Reads only and takes no lock."""

from fcn_install.errors import SetupError
from fcn_install.fileops import TMP_SUFFIX
from fcn_install.install import plan_install
from fcn_install.keras_tree import REINSTALL_KERAS
from fcn_install.keras_tree import keras_version
from fcn_install.keras_tree import read_or_none
from fcn_install.manifest import read_manifest
from fcn_install.manifest import state_dir
from fcn_install.state import file_state


def status(keras_dir, extensions_dir, *, say=print):
    """Reports install state and drift; reads only and takes no lock.
    Returns True when all is consistent."""
    try:
        state = state_dir(keras_dir)
        manifest = read_manifest(keras_dir)
    except SetupError as e:
        say(f"FCN extensions: {e}")
        return False
    if manifest is None:
        if state.exists():
            say(f"FCN extensions: not installed; {state} holds no manifest (an "
                "interrupted run, or one in progress): `python FCN_setup.py "
                "install` or `uninstall` removes it")
            return False
        say(f"FCN extensions: not installed in Keras at {keras_dir}")
        return True
    try:
        version = keras_version(keras_dir)
    except SetupError:
        version = "(unknown version)"
    if manifest.get("keras_version") not in (None, version):
        say(f"  installed for Keras {manifest['keras_version']}, found Keras {version}")
    drift = []
    for rel, entry in sorted(manifest["files"].items()):
        current = read_or_none(keras_dir / rel) if (keras_dir / rel).is_file() else None
        s = file_state(current, entry)
        if s != "installed":
            drift.append((rel, "an update in progress" if s == "previous" else s))
        for leftover in (keras_dir / rel).parent.glob(f".{(keras_dir / rel).name}*{TMP_SUFFIX}"):
            drift.append((leftover.relative_to(keras_dir).as_posix(), "a leftover temp file"))
    for rel, s in drift:
        say(f"  {s}: {keras_dir / rel}")
    try:
        plan = plan_install(keras_dir, extensions_dir, manifest, force=True)
        outdated = [] if drift else [rel for _, rel in plan.changes]
    except SetupError as e:
        outdated = [f"(cannot compare with extensions/: {e})"]
    for rel in outdated:
        say(f"  out of date: {rel}")
    count = len(manifest["files"])
    if drift:
        say(f"FCN extensions: installed ({count} files) with drift in {len(drift)} "
            f"file(s): reinstall Keras ({REINSTALL_KERAS}) or run "
            "`python FCN_setup.py uninstall`")
    elif outdated:
        say(f"FCN extensions: installed ({count} files) but extensions/ changed "
            "since; run `python FCN_setup.py install`")
    else:
        say(f"FCN extensions: installed and intact ({count} files)")
    return not drift and not outdated
