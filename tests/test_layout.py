"""The layout's rules: imports run one way, and the pure modules stay pure.

Apps import only apps below them: ftps -> files -> signon -> certs -> users -> audit. ``mft`` (settings, URLs,
WSGI) wires them together and holds no behaviour. The pure modules import no Django and no
module that is not pure, so any app may use them.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["audit", "users", "certs", "signon", "files", "ftps", "api"]  # each may import those before it
PURE = {
    "certs.x509",
    "certs.loading",
    "certs.pfx",
    "certs.trust",
    "certs.paths",
    "certs.revocation",
    "certs.ocsp",
    "certs.issuing",
    "certs.chain",
    "certs.impact",
    "signon.proxy",
    "files.homes",
    "ftps.addresses",
}


def product_modules():
    for app in [*ORDER, "mft"]:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def imported(module: str, path: Path) -> set[str]:
    """Every module name the file imports, relative imports resolved."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module
            names.add(stem)
            names.update(f"{stem}.{alias.name}" for alias in node.names)
    return names


MODULES = list(product_modules())


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_imports_point_down(module, path):
    app = module.split(".")[0]
    allowed = set(ORDER) if app == "mft" else set(ORDER[: ORDER.index(app) + 1])
    for name in imported(module, path):
        top = name.split(".")[0]
        if top == "mft":
            raise AssertionError(f"{module} imports {name}: the project package only wires, nothing imports it")
        if top in ORDER and top not in allowed:
            target = ".".join(name.split(".")[:2])
            assert target in PURE or name in PURE, f"{module} imports {name}, which is above it"


@pytest.mark.parametrize("module", sorted(PURE))
def test_pure_modules_import_no_django_and_nothing_impure(module):
    path = ROOT / (module.replace(".", "/") + ".py")
    for name in imported(module, path):
        top = name.split(".")[0]
        assert top != "django", f"{module} imports {name}"
        if top in ORDER and name != top:  # an app's package itself is empty
            assert ".".join(name.split(".")[:2]) in PURE, f"{module} imports {name}, which is not pure"
