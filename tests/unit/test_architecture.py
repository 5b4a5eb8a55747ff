"""The shape docs/architecture.md draws: which package may import which, and
no circle among the modules. Imports are read from the source (those inside
functions too), so a lazy import cannot hide a circle."""

import ast
import os
from typing import Dict, Set

from tests.helpers import REPO

PACKAGES = ("pipelines", "transforms", "runners", "oracles", "benchmarks",
            "tests")
# What each package of the product may import (besides itself): the
# stages (transforms/) know nothing of the command line or the runners;
# the runners nothing of the command line; nothing of the product imports
# the oracles, the benchmarks or the tests. The oracles import nothing of
# the project: the reference a test compares the pipeline with cannot
# share its bugs.
MAY_IMPORT = {
    "transforms": set(),
    "runners": {"transforms"},
    "pipelines": {"transforms", "runners"},
    "oracles": set(),
}


def _module_name(path: str) -> str:
  return os.path.splitext(os.path.relpath(path, REPO))[0].replace(os.sep, ".")


def _imports(path: str) -> Set[str]:
  """The project modules ``path`` imports, anywhere in it."""
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), path)
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      # "from transforms import metrics" names a module; "from
      # transforms.metrics import count" names one of its members.
      names = [node.module + "." + a.name for a in node.names]
      names.append(node.module)
    else:
      continue
    for name in names:
      if name.split(".")[0] in PACKAGES:
        found.add(name)
  return found


def module_graph() -> Dict[str, Set[str]]:
  """Every module of the packages → the project modules it imports."""
  modules = {}
  for package in PACKAGES:
    for folder, dirs, names in os.walk(os.path.join(REPO, package)):
      dirs[:] = sorted(d for d in dirs if d != "__pycache__")
      for name in sorted(names):
        if name.endswith(".py") and name != "__init__.py":
          path = os.path.join(folder, name)
          modules[_module_name(path)] = _imports(path)
  return {module: {name for name in imports if name in modules}
          for module, imports in modules.items()}


def test_packages_import_only_what_they_may():
  wrong = []
  for module, imports in module_graph().items():
    package = module.split(".")[0]
    if package not in MAY_IMPORT:
      continue
    for name in imports:
      other = name.split(".")[0]
      if other != package and other not in MAY_IMPORT[package]:
        wrong.append("%s imports %s" % (module, name))
  assert not wrong, wrong


def test_tests_take_their_references_from_the_oracles_not_the_benchmarks():
  """A test compares with ``oracles/``, which the benchmarks import too; a
  benchmark is a measurement, free to change, never a test's reference."""
  graph = module_graph()
  assert "tests.unit.test_architecture" in graph  # the tiers' folders read
  wrong = ["%s imports %s" % (module, name)
           for module, imports in graph.items() if module.startswith("tests.")
           for name in imports if name.startswith("benchmarks.")]
  assert not wrong, wrong


def test_no_module_imports_one_that_imports_it_back():
  graph = module_graph()
  product = {m: {n for n in deps if n.split(".")[0] in MAY_IMPORT}
             for m, deps in graph.items() if m.split(".")[0] in MAY_IMPORT}
  circles = []
  state: Dict[str, int] = {}  # 1: on the current path, 2: done
  path = []

  def visit(module):
    state[module] = 1
    path.append(module)
    for other in sorted(product.get(module, ())):
      if state.get(other) == 1:
        circles.append(" -> ".join(path[path.index(other):] + [other]))
      elif other not in state:
        visit(other)
    path.pop()
    state[module] = 2

  for module in sorted(product):
    if module not in state:
      visit(module)
  assert not circles, circles


def test_the_checker_sees_a_lazy_import(tmp_path):
  """An import inside a function counts: the circle through
  transforms/instances.py's lazy import of pool_files was one."""
  source = tmp_path / "m.py"
  source.write_text("def f():\n  from transforms import pool_files\n")
  assert "transforms.pool_files" in _imports(str(source))


def test_architecture_page_names_every_module():
  """docs/architecture.md lists every module of the product, so the page
  cannot fall behind a new one."""
  with open(os.path.join(REPO, "docs", "architecture.md"),
            encoding="utf-8") as f:
    page = f.read()
  missing = [m for m in module_graph()
             if m.split(".")[0] in MAY_IMPORT
             and "`%s.py`" % m.replace(".", "/") not in page]
  assert not missing, missing
