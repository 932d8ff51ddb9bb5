"""FCN_setup.py under concurrent runs, kills, user edits, hostile manifests
and untested Keras versions, on real copies of the venv's Keras."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import FCN_setup
from test_installer import REPO
from test_installer import SETUP
from test_installer import last_line
from test_installer import pristine_site  # noqa: F401 (fixture)
from test_installer import run_setup
from test_installer import tree_hashes

# flock, hard links (cp -al) and rlimits: POSIX only. On Windows,
# tests/test_installer_windows.py covers the installer.
fcntl = pytest.importorskip("fcntl", reason="POSIX only (flock, cp -al, rlimits)")

STATE = FCN_setup.STATE_DIR
APPS_INIT = "applications/__init__.py"
ADDED_MODULE = "src/applications/vgg16_fcn.py"
SHIM_DIR = "applications/vgg16_fcn"
quiet = lambda line: None  # noqa: E731


def link_copy(source, target):
    """A copy whose files are hard links: cheap, for runs that only replace files."""
    subprocess.run(["cp", "-al", str(source), str(target)], check=True)


def stat_snapshot(root):
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            st = os.lstat(os.path.join(directory, name))
            found[os.path.join(directory, name)] = (st.st_ino, st.st_size,
                                                    st.st_mtime_ns, st.st_mode)
    return found


@pytest.fixture(scope="module")
def pristine_stats(pristine_site):  # noqa: F811
    return stat_snapshot(pristine_site / "keras")


@pytest.fixture
def site(pristine_site, pristine_stats, tmp_path):  # noqa: F811
    """A hard-linked copy of pristine Keras. The installer only replaces
    files, and the tests edit only files it wrote (or unlink first); the
    check after each test proves the shared files stayed untouched."""
    site = tmp_path / "site"
    site.mkdir()
    link_copy(pristine_site / "keras", site / "keras")
    yield site
    assert stat_snapshot(pristine_site / "keras") == pristine_stats


def manifest_of(site):
    return json.loads((site / "keras" / STATE / FCN_setup.MANIFEST_NAME).read_text())


def write_manifest(site, manifest):
    (site / "keras" / STATE / FCN_setup.MANIFEST_NAME).write_text(json.dumps(manifest))


def sha(data):
    return hashlib.sha256(data).hexdigest()


def import_keras(site):
    env = dict(os.environ, PYTHONPATH=str(site), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-c", "import keras, keras.applications; "
         "import keras._tf_keras.keras.applications; print(keras.__file__)"],
        env=env, capture_output=True, text=True)


# ------------------------------------------------------------- concurrency


def concurrent_pairs():
    # 8 in the default suite (fast feedback); the CI step
    # .ci/steps/20-installer-killpoints.sh runs 50.
    return int(os.environ.get("FCN_SETUP_CONCURRENT_PAIRS", "8"))


def test_concurrent_installs_serialise(pristine_site, tmp_path):  # noqa: F811
    """Pairs of installs started together, then pairs of uninstalls: every
    run succeeds and the tree ends byte-identical to pristine."""
    pristine = tree_hashes(pristine_site / "keras")
    env = dict(os.environ, PYTHONPATH="", TF_CPP_MIN_LOG_LEVEL="3")
    outcomes = []
    for i in range(concurrent_pairs()):
        site = tmp_path / f"pair{i}"
        site.mkdir()
        link_copy(pristine_site / "keras", site / "keras")
        env["PYTHONPATH"] = str(site)
        for command in ("install", "uninstall"):
            runs = [subprocess.Popen([sys.executable, str(SETUP), command], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True) for _ in range(2)]
            outputs = [run.communicate()[0] for run in runs]
            assert [run.returncode for run in runs] == [0, 0], outputs
            lasts = sorted(out.strip().splitlines()[-1].split(" ")[0] for out in outputs)
            outcomes.append((command, tuple(lasts)))
            if command == "install":
                assert FCN_setup.status(site / "keras", say=quiet)
        assert tree_hashes(site / "keras") == pristine
        shutil.rmtree(site)
    # One run of each pair did the work, the other found it done.
    assert set(outcomes) == {("install", ("FCN", "installed")),
                             ("uninstall", ("FCN", "uninstalled"))}
    assert tree_hashes(pristine_site / "keras") == pristine


def test_a_held_lock_refuses_after_the_timeout_and_status_does_not_wait(site):  # noqa: F811
    before = tree_hashes(site / "keras")
    fd = os.open(site / "keras", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        result = run_setup(site, "install", "--lock-timeout", "0.3", check=1)
        assert result.stderr.count("\n") == 1
        line = last_line(result)
        assert "another FCN_setup.py run held the lock" in line
        assert "nothing was changed" in line and "--lock-timeout" in line
        result = run_setup(site, "uninstall", "--lock-timeout", "0", check=1)
        assert "held the lock" in last_line(result)
        # status reads only: it answers while the lock is held.
        result = run_setup(site, "status", check=0)
        assert "not installed" in last_line(result)
    finally:
        os.close(fd)
    assert tree_hashes(site / "keras") == before
    run_setup(site, "install", "--lock-timeout", "0", check=0)


def test_lock_timeout_must_not_be_negative(site):  # noqa: F811
    result = run_setup(site, "install", "--lock-timeout", "-1", check=2)
    assert "Received: --lock-timeout=-1" in result.stderr


# ------------------------------------------------------------ kill points


# Every 80th kill point, plus the first two and the last of each command (10
# points): the default suite only samples them, for fast feedback; the CI step
# .ci/steps/20-installer-killpoints.sh runs all of them.
SAMPLE_EVERY = 80


def test_killed_at_sampled_points_recovers():
    """Every SAMPLE_EVERY-th file operation of install and of uninstall."""
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "installer_killpoints.py"),
         "--every", str(SAMPLE_EVERY), "--workers", "1"],
        capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0, (summary, result.stderr[-3000:])
    assert summary["failures"] == [] and summary["masters_intact"]
    for command, total in summary["operations"].items():
        assert total > 50
        assert summary["points_tested"][command] >= total // SAMPLE_EVERY


def test_debris_of_a_killed_run_is_cleaned(site):  # noqa: F811
    keras_dir = site / "keras"
    pristine = tree_hashes(keras_dir)
    # A state folder without a manifest: a run killed while backing up.
    (keras_dir / STATE / "backup" / "applications").mkdir(parents=True)
    (keras_dir / STATE / "backup" / APPS_INIT).write_text("partial")
    result = run_setup(site, "status", check=1)
    assert "holds no manifest" in last_line(result)
    result = run_setup(site, "uninstall", check=0)
    assert "without a manifest" in result.stdout
    assert tree_hashes(keras_dir) == pristine
    # Temp files of killed writes, this version's and older random-named ones.
    FCN_setup.install(keras_dir, say=quiet)
    for name in (".__init__.py.fcn-tmp", ".__init__.py.k3j_x9.fcn-tmp"):
        (keras_dir / "applications" / name).write_text("half")
    (keras_dir / STATE / ".manifest.json.fcn-tmp").write_text("half")
    result = run_setup(site, "status", check=1)
    assert "leftover temp file" in result.stdout
    result = run_setup(site, "install", check=0)
    assert "removed 3 temp file(s)" in result.stdout
    assert "up to date" in last_line(result)
    run_setup(site, "uninstall", check=0)
    assert tree_hashes(keras_dir) == pristine


# --------------------------------------------------------------- versions


@pytest.mark.parametrize("version", ["3.15rc1", "3.15.1.dev0", "3.15.1rc1",
                                     "3.15.1+local", "3.16.0", "3.14.9", "4.15.0"])
def test_refuses_untested_or_pre_release_versions_first(site, version):  # noqa: F811
    version_file = site / "keras/src/version.py"
    text = version_file.read_text()
    version_file.unlink()  # a hard link to the pristine master
    version_file.write_text(text.replace('"3.15.1"', f'"{version}"'))
    before = tree_hashes(site / "keras")
    result = run_setup(site, "install", check=1)
    # The reason is the only line: no plan before it.
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert f"Keras {version}" in result.stderr and "nothing was changed" in result.stderr
    assert tree_hashes(site / "keras") == before


@pytest.mark.parametrize("version, ok", [("3.15.0", True), ("3.15.2", True),
                                         ("3.15", True), ("3.15.1a1", False),
                                         ("3.15.1.post1", False), ("v3.15.1", False)])
def test_check_version_accepts_only_final_releases(version, ok):
    if ok:
        FCN_setup.check_version(version, Path("/k"))
    else:
        with pytest.raises(FCN_setup.SetupError, match="tested range"):
            FCN_setup.check_version(version, Path("/k"))


def test_missing_version_file_blocks_install_but_not_uninstall(site):  # noqa: F811
    keras_dir = site / "keras"
    pristine = tree_hashes(keras_dir)
    FCN_setup.install(keras_dir, say=quiet)
    version_file = keras_dir / "src" / "version.py"
    version_file.unlink()
    result = run_setup(site, "install", check=1)
    assert "no version in" in last_line(result) and result.stdout == ""
    result = run_setup(site, "uninstall", check=0)
    assert "uninstalled" in last_line(result)
    pristine.pop("src/version.py")
    assert tree_hashes(keras_dir) == pristine


# ---------------------------------------------------------------- tampering


def _entry(manifest, action):
    return next(e for e in manifest["files"].values() if e["action"] == action)


def _tamper(case, site, outside):
    keras_dir = site / "keras"
    m = manifest_of(site)
    canary = site / "canary.txt"
    added = dict(_entry(m, "added"), installed_sha256=sha(canary.read_bytes()))
    if case == "dotdot_file":
        m["files"]["../canary.txt"] = added
    elif case == "dotdot_inside_path":
        m["files"]["src/../../canary.txt"] = added
    elif case == "absolute_file":
        m["files"][str(canary)] = added
    elif case == "created_dir_outside":
        m["created_dirs"].append("../outside")
    elif case == "created_dir_absolute":
        m["created_dirs"].append(str(outside))
    elif case == "pycache_outside":
        entry = m["files"][APPS_INIT]
        entry["pycache"]["../../canary.txt"] = sha(canary.read_bytes())
    elif case == "files_is_a_list":
        m["files"] = []
    elif case == "entry_without_action":
        del m["files"][ADDED_MODULE]["action"]
    elif case == "bad_hash":
        m["files"][ADDED_MODULE]["installed_sha256"] = "0" * 63
    elif case == "format_missing":
        del m["format"]
    if case == "not_json":
        (keras_dir / STATE / FCN_setup.MANIFEST_NAME).write_text("{\"files\": ")
    elif case == "shim_dir_symlink":
        shutil.move(keras_dir / SHIM_DIR, outside / "vgg16_fcn")
        (keras_dir / SHIM_DIR).symlink_to(outside / "vgg16_fcn")
    elif case == "state_dir_symlink":
        shutil.move(keras_dir / STATE, outside / "state")
        (keras_dir / STATE).symlink_to(outside / "state")
    elif case == "backup_dir_symlink":
        shutil.move(keras_dir / STATE / "backup", outside / "backup")
        (keras_dir / STATE / "backup").symlink_to(outside / "backup")
    elif case == "manifest_symlink":
        shutil.move(keras_dir / STATE / FCN_setup.MANIFEST_NAME, outside / "m.json")
        (keras_dir / STATE / FCN_setup.MANIFEST_NAME).symlink_to(outside / "m.json")
    elif case == "backup_tampered":
        backup = keras_dir / STATE / "backup" / APPS_INIT
        backup.write_bytes(backup.read_bytes() + b"import os; os.system('true')\n")
    else:
        write_manifest(site, m)


TAMPER_CASES = ["dotdot_file", "dotdot_inside_path", "absolute_file",
                "created_dir_outside", "created_dir_absolute", "pycache_outside",
                "files_is_a_list", "entry_without_action", "bad_hash",
                "format_missing", "not_json", "shim_dir_symlink", "state_dir_symlink",
                "backup_dir_symlink", "manifest_symlink", "backup_tampered"]


@pytest.mark.parametrize("case", TAMPER_CASES)
def test_a_tampered_install_is_refused_and_nothing_changes(site, case):  # noqa: F811
    keras_dir = site / "keras"
    outside = site / "outside"
    outside.mkdir()
    (site / "canary.txt").write_text("must survive\n")
    (outside / "keep.txt").write_text("must survive too\n")
    FCN_setup.install(keras_dir, say=quiet)
    _tamper(case, site, outside)
    before = tree_hashes(site)
    for command in ("uninstall", "install", "status"):
        result = run_setup(site, command, check=1)
        line = last_line(result)
        assert tree_hashes(site) == before, (command, line)
        if command != "status":
            assert result.stderr.count("\n") == 1, result.stderr
            assert "nothing was changed" in line, line
        assert "Traceback" not in result.stderr
    assert (site / "canary.txt").read_text() == "must survive\n"


def test_a_fresh_install_refuses_a_symlinked_state_folder(site):  # noqa: F811
    outside = site / "outside"
    outside.mkdir()
    (site / "keras" / STATE).symlink_to(outside)
    before = tree_hashes(site)
    result = run_setup(site, "install", check=1)
    assert "is a symlink" in last_line(result) and result.stdout == ""
    assert tree_hashes(site) == before and not any(outside.iterdir())


def test_created_dirs_naming_keras_own_folder_removes_nothing_of_keras(site):  # noqa: F811
    keras_dir = site / "keras"
    pristine = tree_hashes(keras_dir)
    FCN_setup.install(keras_dir, say=quiet)
    m = manifest_of(site)
    m["created_dirs"] += ["src/applications", "applications"]
    write_manifest(site, m)
    run_setup(site, "uninstall", check=0)
    assert tree_hashes(keras_dir) == pristine


# --------------------------------------------------------------- user edits


def test_uninstall_keeps_user_lines_in_an_edited_init(site):  # noqa: F811
    keras_dir = site / "keras"
    init = keras_dir / APPS_INIT
    original = init.read_bytes()
    pristine = tree_hashes(keras_dir)
    FCN_setup.install(keras_dir, say=quiet)
    init.write_bytes(b"# mine, at the top\n" + init.read_bytes() + b"MY_CONSTANT = 1\n")
    result = run_setup(site, "uninstall", check=0)
    assert f"kept your lines in {init}" in result.stdout
    assert init.read_bytes() == b"# mine, at the top\n" + original + b"MY_CONSTANT = 1\n"
    after = tree_hashes(keras_dir)
    changed = {rel for rel in set(pristine) | set(after) if pristine.get(rel) != after.get(rel)}
    assert changed <= {APPS_INIT, "applications/__pycache__/__init__.cpython-311.pyc"}
    imported = import_keras(site)
    assert imported.returncode == 0, imported.stderr[-2000:]


def test_uninstall_refuses_an_edited_block_or_module_unless_forced(site):  # noqa: F811
    keras_dir = site / "keras"
    pristine = tree_hashes(keras_dir)
    FCN_setup.install(keras_dir, say=quiet)
    init = keras_dir / APPS_INIT
    init.write_text(init.read_text().replace(FCN_setup.BLOCK_END, "x = 1\n" + FCN_setup.BLOCK_END))
    module = keras_dir / ADDED_MODULE
    module.write_text(module.read_text() + "# my fix\n")
    before = tree_hashes(keras_dir)
    result = run_setup(site, "uninstall", check=1)
    line = last_line(result)
    assert str(init) in line and "FCN block edited" in line and "--force" in line
    assert "1 more file(s)" in line and result.stdout == ""
    assert tree_hashes(keras_dir) == before
    result = run_setup(site, "uninstall", "--force", check=0)
    assert tree_hashes(keras_dir) == pristine


def test_install_refuses_to_overwrite_user_edits_unless_forced(site):  # noqa: F811
    keras_dir = site / "keras"
    FCN_setup.install(keras_dir, say=quiet)
    module = keras_dir / ADDED_MODULE
    installed = module.read_bytes()
    module.write_bytes(installed + b"# my fix\n")
    init = keras_dir / APPS_INIT
    init.write_bytes(b"# mine\n" + init.read_bytes())
    before = tree_hashes(keras_dir)
    result = run_setup(site, "install", check=1)
    assert "was edited since FCN_setup.py" in last_line(result) and result.stdout == ""
    assert tree_hashes(keras_dir) == before
    result = run_setup(site, "install", "--force", check=0)
    assert "--force:" in result.stdout
    assert module.read_bytes() == installed
    # The user's line stays in the __init__.py, and is kept by uninstall.
    assert init.read_text().startswith("# mine\n") and FCN_setup.BLOCK_BEGIN in init.read_text()
    assert FCN_setup.status(keras_dir, say=quiet)
    run_setup(site, "uninstall", check=0)
    assert init.read_text().startswith("# mine\n")
    assert FCN_setup.BLOCK_BEGIN not in init.read_text()


def test_install_refuses_to_remove_an_edited_file_extensions_dropped(site, tmp_path):  # noqa: F811
    keras_dir = site / "keras"
    extensions = tmp_path / "extensions"
    shutil.copytree(REPO / "extensions", extensions)
    extra = extensions / "keras" / "src" / "utils" / "fcn_scratch_module.py"
    extra.write_text("VALUE = 1\n")
    FCN_setup.install(keras_dir, extensions, say=quiet)
    extra.unlink()
    installed = keras_dir / "src/utils/fcn_scratch_module.py"
    installed.write_text("VALUE = 1  # and mine\n")
    with pytest.raises(FCN_setup.SetupError, match="fcn_scratch_module.py was edited"):
        FCN_setup.install(keras_dir, extensions, say=quiet)
    assert installed.read_text() == "VALUE = 1  # and mine\n"
    FCN_setup.install(keras_dir, extensions, force=True, say=quiet)
    assert not installed.exists()


def test_install_adopts_a_keras_file_replaced_since_and_uninstall_restores_it(site):  # noqa: F811
    keras_dir = site / "keras"
    init = keras_dir / APPS_INIT
    newer = init.read_bytes() + b"# a newer Keras\n"
    FCN_setup.install(keras_dir, say=quiet)
    init.write_bytes(newer)  # a Keras reinstall: no FCN block in it
    result = run_setup(site, "install", check=0)
    assert "was replaced since the install" in result.stdout
    assert init.read_bytes().startswith(newer)
    run_setup(site, "uninstall", check=0)
    assert init.read_bytes() == newer


def test_install_refuses_a_foreign_file_where_it_would_add_one(site):  # noqa: F811
    keras_dir = site / "keras"
    pristine = tree_hashes(keras_dir)
    foreign = keras_dir / ADDED_MODULE
    foreign.write_text("# someone else's module\n")
    before = tree_hashes(keras_dir)
    result = run_setup(site, "install", check=1)
    assert f"{foreign} exists and was not written by FCN_setup.py" in last_line(result)
    assert tree_hashes(keras_dir) == before
    run_setup(site, "install", "--force", check=0)
    run_setup(site, "uninstall", check=0)
    assert foreign.read_text() == "# someone else's module\n"
    after = tree_hashes(keras_dir)
    assert {r for r in set(after) | set(pristine) if after.get(r) != pristine.get(r)} == {
        ADDED_MODULE}


# ------------------------------------------------------------ write faults


def _file_size_limit(limit):
    """A real EFBIG: writes past `limit` bytes fail (SIGXFSZ ignored)."""
    def apply():
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


# Limits as fractions of the largest file install writes, so that every
# one of them fails somewhere inside the install (early, midway, late).
@pytest.mark.parametrize("fraction", [0.15, 0.6, 0.95])
def test_efbig_midway_rolls_back_install_and_uninstall(site, fraction):
    largest = max(
        path.stat().st_size
        for path in (SETUP.parent / "extensions" / "keras").rglob("*")
        if path.is_file()
    )
    limit = int(largest * fraction)
    keras_dir = site / "keras"
    pristine = tree_hashes(keras_dir)
    env = dict(os.environ, PYTHONPATH=str(site))
    run = lambda command: subprocess.run(  # noqa: E731
        [sys.executable, str(SETUP), command], env=env, capture_output=True,
        text=True, preexec_fn=_file_size_limit(limit))
    result = run("install")
    assert result.returncode == 1 and "every change was rolled back" in result.stderr
    assert tree_hashes(keras_dir) == pristine
    FCN_setup.install(keras_dir, say=quiet)
    installed = tree_hashes(keras_dir)
    result = run("uninstall")
    if "every change was rolled back" in result.stderr:
        assert tree_hashes(keras_dir) == installed
    elif result.returncode == 1:
        # Putting a bigger file (here a .pyc) back needs room too: what
        # cannot be undone is said, every file is whole, import works.
        assert "could not be rolled back" in last_line(result)
        assert "run `python FCN_setup.py uninstall` again" in last_line(result)
        assert import_keras(site).returncode == 0
    run_setup(site, "uninstall", check=0)
    assert tree_hashes(keras_dir) == pristine
