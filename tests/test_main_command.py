"""The README's first command gives a notebook UI with a Python kernel and archiving on:
``jupyter lab`` (JupyterLab) and ``jupyter notebook`` (Notebook 7), each run as people
run it, with the default settings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.jupyter_process import JupyterServer, notebook

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_starts_with_installing_and_running_jupyterlab() -> None:
    first = re.search(r"```bash\n(.+?)\n```", README.read_text(encoding="utf-8"), re.DOTALL)
    assert first is not None
    assert first[1] == "pip install . && jupyter lab --allow-root"


@pytest.mark.parametrize(
    ("app", "page", "title"),
    [("lab", "/lab", "JupyterLab"), ("notebook", "/tree", "Jupyter Notebook")],
)
def test_the_ui_opens_runs_python_and_archives_every_save(
    tmp_path: Path, app: str, page: str, title: str
) -> None:
    with JupyterServer(tmp_path, app=app) as server:
        ui = server.session.get(f"{server.url}{page}", timeout=30)
        assert ui.status_code == 200, ui.text[:300]
        config = re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', ui.text, re.DOTALL)
        assert config is not None, ui.text[:300]
        assert json.loads(config[1])["appName"] == title

        kernelspecs = server.api("GET", "/api/kernelspecs").json()["kernelspecs"]
        assert kernelspecs["python3"]["spec"]["language"] == "python"
        kernel = server.api("POST", "/api/kernels", json={"name": "python3"})
        assert kernel.status_code == 201, kernel.text
        assert server.api("DELETE", f"/api/kernels/{kernel.json()['id']}").status_code == 204

        server.save("Untitled.ipynb", notebook("first"))
        server.save("Untitled.ipynb", notebook("second"))
        status = server.wait_archived()
        assert status["features"]["storage"] == "local"
        versions = server.api("GET", "/api/bookstore/versions/Untitled.ipynb").json()
        assert versions["total"] == 2
