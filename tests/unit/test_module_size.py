"""The layout rule of docs/architecture.md that import-linter cannot check: no module of the product code over
400 lines (small modules, one job each)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("engine", "forms", "integrations", "web")
LIMIT = 400


def oversized(root: Path) -> dict[str, int]:
    sizes = {str(path.relative_to(root)): len(path.read_text(encoding="utf-8").splitlines())
             for package in PRODUCT for path in (root / package).rglob("*.py")}
    return {path: lines for path, lines in sizes.items() if lines > LIMIT}


def test_no_product_module_is_over_400_lines():
    assert oversized(ROOT) == {}


def test_the_check_sees_a_long_module(tmp_path):
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "long.py").write_text("x = 1\n" * (LIMIT + 1), encoding="utf-8")
    (tmp_path / "web" / "short.py").write_text("x = 1\n" * LIMIT, encoding="utf-8")
    assert oversized(tmp_path) == {"web/long.py": LIMIT + 1}
