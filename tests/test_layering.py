"""DESIGN.md's module layering, enforced: each module imports only from modules above it."""

import ast
from pathlib import Path

import glassnet

# Top to bottom, as in DESIGN.md; a module may import from modules listed before it.
LAYERS = ["backend", "kernels", "config", "i18n", "ops", "random", "activations", "initializers",
          "regularizers", "layers", "losses", "metrics", "optimizers", "callbacks", "distribution",
          "models", "saving", "glassbox", "datasets", "images", "plots", "serve", "utils",
          "preprocessing", "cli"]  # fmt: skip
SELF_CONTAINED = {"datasets"}  # imports nothing else from glassnet at all
# Inside a package the same rule, top to bottom (its __init__ may import them all).
PACKAGES = {
    "models": ["checks", "data", "graph", "steps", "compiling", "summary", "trainer",
               "functional", "model", "sequential", "cloning", "saving"],
    "layers": ["base", "core", "activations", "convolutional", "reshaping", "pooling",
               "embedding", "merging", "normalization", "preprocessing", "lookup", "recurrent",
               "conv_recurrent", "wrappers"],
    "glassbox": ["render", "trace", "gradcheck", "deck", "descent", "unrolled"],
    "serve": ["words", "guard", "app"],
}  # fmt: skip
ROOT = Path(glassnet.__file__).parent


def top_module(path: Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def glassnet_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = (
                [node.module]
                if node.module != "glassnet"
                else [f"glassnet.{alias.name}" for alias in node.names]
            )
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "glassnet" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_module_is_placed():
    modules = {top_module(p) for p in ROOT.rglob("*.py")} - {"__init__"}
    assert modules <= set(LAYERS), modules - set(LAYERS)


def test_imports_point_up_the_list():
    wrong = []
    for path in ROOT.rglob("*.py"):
        module = top_module(path)
        if module == "__init__":
            continue
        for imported in glassnet_imports(path) - {module}:
            if imported not in LAYERS:  # `from glassnet import name`: the root imports everything
                wrong.append(f"{path.relative_to(ROOT)} imports from the glassnet package root")
            elif module in SELF_CONTAINED or LAYERS.index(imported) > LAYERS.index(module):
                wrong.append(f"{path.relative_to(ROOT)} imports glassnet.{imported}")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def package_imports(path: Path, package: str) -> set[str]:
    """The modules of ``package`` that the module at ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[:2] == ["glassnet", package] and len(parts) > 2:
                found.add(parts[2])
    return found


def test_inside_each_package_imports_point_up_its_list():
    wrong = []
    for package, order in PACKAGES.items():
        folder = ROOT / package
        modules = {p.stem for p in folder.glob("*.py")} - {"__init__"}
        assert modules == set(order), (package, modules ^ set(order))
        for name in order:
            for imported in package_imports(folder / f"{name}.py", package) - {name}:
                if order.index(imported) > order.index(name):
                    wrong.append(f"{package}/{name}.py imports {package}.{imported}")
    assert not wrong, "imports against the layering inside packages:\n" + "\n".join(wrong)


def test_the_library_imports_numpy_only():
    import subprocess
    import sys

    code = (
        "import sys, glassnet; heavy = {'matplotlib', 'PIL', 'sklearn', 'scipy', 'torch', "
        "'tensorflow', 'keras'} & {m.split('.')[0] for m in sys.modules}; print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
