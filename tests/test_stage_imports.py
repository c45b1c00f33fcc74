"""Each DVC stage is its own `geoloc materialize` process, so what a process imports is paid on
every stage: loading the code location, and running the steps after retrieval, must not drag in
the libraries only other groups need (torch and open_clip cost seconds each on 2 cores)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO

HEAVY = ("torch", "open_clip", "transformers", "sklearn", "openai", "faiss", "matplotlib")


def loaded_after(statement: str) -> set[str]:
    """Which HEAVY top-level packages a fresh interpreter holds after running statement."""
    probe = (
        "import json, sys, warnings\n"
        "warnings.simplefilter('ignore')\n"
        f"{statement}\n"
        f"print(json.dumps(sorted(m for m in {list(HEAVY)!r} if m in sys.modules)))\n"
    )
    env = {**os.environ, "GEOLOC_ROOT": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_code_location_and_light_steps_import_no_heavy_library():
    # the code location; the re-rank (scikit-learn only once it clusters); DualGeo's LMM step
    # (no client with provider none); evaluation; and the params checks of every section
    light = (
        "import geoloc_assets.definitions\n"
        "import geoloc_core.steps.rerank, geoloc_core.steps.lmm, geoloc_core.steps.evaluate\n"
        "import geoloc_core.params_check\n"
        "import geoloc_core.settings_tree as tree\n"
        "tree.params_schema()"
    )
    assert loaded_after(light) == set()


def test_verification_step_imports_no_backbone_or_client_library():
    # it embeds the candidates' coordinates with the trained GPS encoder (torch; the model
    # module also brings FAISS, 0.1 s), but needs no open_clip, LMM client or DBSCAN
    loaded = loaded_after("import geoloc_core.steps.verification")
    assert "torch" in loaded
    assert loaded <= {"torch", "faiss"}
