"""What pyproject.toml cannot say: the files the wheel takes from outside its
packages. `extensions/` becomes `fcn_install/extensions` (the sources the
installer copies into Keras), and the demo notebook and test photo at the
repository's root go into `fcn_experiments/`. Tests, bench and results stay out.
"""

import shutil
from pathlib import Path

from setuptools import find_packages
from setuptools import setup
from setuptools.command.build_py import build_py

ROOT_FILES = {"fcn_experiments": ["FCN_demo.ipynb", "test_image.jpg"]}


class BuildWithRootFiles(build_py):
    """build_py, plus ROOT_FILES copied into their package in the build."""

    def run(self):
        super().run()
        for package, names in ROOT_FILES.items():
            for name in names:
                target = Path(self.build_lib, package, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(name, target)


setup(
    packages=find_packages(include=["fcn_experiments", "fcn_experiments.*",
                                    "fcn_install"]) + ["fcn_install.extensions"],
    package_dir={"fcn_install.extensions": "extensions"},
    package_data={"fcn_install.extensions": ["public_api.toml", "keras/**/*.py"]},
    exclude_package_data={"": ["__pycache__", "*.pyc"]},
    cmdclass={"build_py": BuildWithRootFiles},
)
