"""Production code uses no private attribute of Django, DRF, psycopg, Celery, redis, simplejwt,
django-import-export or any other library (issue 19): only their public API.

The production source (the apps and `config`, migrations excepted) is parsed, not grepped:

- `<expr>._name` is a finding unless `_name` is ours. Through `self`, `cls`, `super()` or a
  module-level name bound to one of our classes (or to an instance of one), the class is
  imported and its MRO walked: the name is ours when one of our classes in it declares it (a
  method, a class attribute, a `self._name = ...`) and no library class in it has it (in its
  namespace or assigned in its source), so overriding or reading a library's private hook is
  caught. On any other expression the object's class is not known statically: the name is ours
  when our code assigns or defines it somewhere and no library class we import or inherit from
  has a private attribute of that name.
- `getattr(obj, "_name")` and friends count as `obj._name`.
- Defining `_name` in a class that inherits a library class with a private `_name` (overriding
  a private hook) is a finding.
- `from library import _name` and `import library._module` are findings.

`_meta`, `Model._state.adding` and `Model._state.db` are documented Django API. ALLOW_LIST is
for sites this scan cannot judge; it must stay empty.
"""

import ast
import functools
import importlib
import inspect
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ("accounts", "analytics", "backups", "config", "credits", "jobs", "shops")
DOCUMENTED = {"_meta"}  # Options, the documented Model._meta API
DOCUMENTED_STATE = {"adding", "db"}  # Model._state.adding and Model._state.db
ACCESSORS = {"getattr", "setattr", "hasattr", "delattr"}

# (path, line, name) of sites this scan cannot judge. Must stay empty.
ALLOW_LIST: list[tuple[str, int, str]] = []


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def is_project_module(module: str) -> bool:
    return module.split(".")[0] in PROJECT_PACKAGES


def production_files() -> list[Path]:
    files = []
    for package in PROJECT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.relative_to(ROOT).parts:
                files.append(path)
    return files


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@dataclass
class ClassInfo:
    module: str
    qualname: str
    node: ast.ClassDef
    top_level: bool
    declared: set[str] = field(default_factory=set)  # private names this class declares


@dataclass
class Module:
    path: Path
    name: str
    tree: ast.Module
    classes: dict[str, ClassInfo] = field(default_factory=dict)  # by qualname
    # module-level names bound to one of this module's classes or to an instance of one
    own_bindings: dict[str, str] = field(default_factory=dict)
    imports: dict[str, str] = field(default_factory=dict)  # local name -> dotted origin


def _self_targets(function: ast.AST) -> set[str]:
    """Private names assigned as `self._x = ...` / `cls._x = ...` inside `function`."""
    names = set()
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
            and is_private(node.attr)
        ):
            names.add(node.attr)
    return names


def _class_body_names(node: ast.ClassDef) -> set[str]:
    names = set()
    for statement in node.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(statement.name)
        elif isinstance(statement, ast.Assign):
            names.update(t.id for t in statement.targets if isinstance(t, ast.Name))
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            names.add(statement.target.id)
    return {name for name in names if is_private(name)}


def parse_module(path: Path, name: str | None = None) -> Module:
    name = name or module_name(path)
    module = Module(path=path, name=name, tree=ast.parse(path.read_text(), str(path)))

    def visit(node, prefix, top_level):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                qualname = f"{prefix}{child.name}"
                info = ClassInfo(module.name, qualname, child, top_level)
                info.declared = _class_body_names(child) | _self_targets(child)
                module.classes[qualname] = info
                visit(child, f"{qualname}.", top_level)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, f"{prefix}{child.name}.<locals>.", False)
            else:
                visit(child, prefix, top_level)

    visit(module.tree, "", True)
    package = module.name if path.name == "__init__.py" else module.name.rpartition(".")[0]
    for statement in module.tree.body:
        if isinstance(statement, ast.Import):
            for alias in statement.names:
                module.imports[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(statement, ast.ImportFrom):
            base = statement.module or ""
            if statement.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - statement.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in statement.names:
                module.imports[alias.asname or alias.name] = f"{base}.{alias.name}"
        elif isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
            if isinstance(target, ast.Name):
                bound = value.func if isinstance(value, ast.Call) else value
                if isinstance(bound, ast.Name) and bound.id in module.classes:
                    module.own_bindings[target.id] = bound.id
    for name in module.classes:
        if "." not in name:
            module.own_bindings.setdefault(name, name)
    return module


@functools.cache
def modules() -> tuple[Module, ...]:
    return tuple(parse_module(path) for path in production_files())


def is_library_class(klass: type) -> bool:
    return klass.__module__ != "builtins" and not is_project_module(klass.__module__)


@functools.cache
def library_private_names(klass: type) -> frozenset[str]:
    """A library class's own private names: in its namespace, or assigned to `self` in its source."""
    names = {name for name in vars(klass) if is_private(name)}
    names.update(name for name in getattr(klass, "__slots__", ()) if is_private(name))
    try:
        source = textwrap.dedent(inspect.getsource(klass))
    except (OSError, TypeError):
        return frozenset(names)
    try:
        names.update(_self_targets(ast.parse(source)))
    except SyntaxError:
        pass
    return frozenset(names)


def runtime_class(info: ClassInfo) -> type | None:
    if not info.top_level:
        return None
    obj = importlib.import_module(info.module)
    for part in info.qualname.split("."):
        obj = getattr(obj, part, None)
    return obj if isinstance(obj, type) else None


@functools.cache
def class_index() -> dict[tuple[str, str], ClassInfo]:
    return {(info.module, info.qualname): info for m in modules() for info in m.classes.values()}


def resolve_import(dotted: str):
    """The object an import names, or None if it cannot be imported."""
    try:
        return importlib.import_module(dotted)
    except ImportError:
        pass
    module, _, attr = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError):
        return None


@functools.cache
def library_privates_in_use() -> frozenset[str]:
    """Every private name of a library class our code imports, inherits or holds an instance of."""
    names: set[str] = set()
    classes: set[type] = set()
    for module in modules():
        for dotted in module.imports.values():
            if is_project_module(dotted):
                continue
            obj = resolve_import(dotted)
            if obj is None or inspect.ismodule(obj):
                if obj is not None:
                    names.update(n for n in vars(obj) if is_private(n))
                continue
            classes.add(obj if isinstance(obj, type) else type(obj))
        for info in module.classes.values():
            klass = runtime_class(info)
            if klass is not None:
                classes.add(klass)
    for klass in classes:
        for base in klass.__mro__:
            if is_library_class(base):
                names |= library_private_names(base)
    return frozenset(names)


def declared_in(module: Module) -> set[str]:
    """Private names a module defines: class members, `x._name = ...`, module-level names."""
    names: set[str] = set()
    for info in module.classes.values():
        names |= info.declared
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and is_private(node.attr):
            names.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if is_private(node.name):
                names.add(node.name)
    for statement in module.tree.body:
        if isinstance(statement, ast.Assign):
            names.update(t.id for t in statement.targets if isinstance(t, ast.Name) and is_private(t.id))
    return names


@functools.cache
def project_declared() -> frozenset[str]:
    return frozenset(name for module in modules() for name in declared_in(module))


def check_in_class(info: ClassInfo, name: str, index: dict) -> str | None:
    """Why `name` on `info`'s class is a library's private attribute, or None if it is ours."""
    klass = runtime_class(info)
    if klass is None:
        return None if name in info.declared else f"{name} is not declared by {info.qualname}"
    declared_by_us = False
    for base in klass.__mro__:
        if is_library_class(base):
            if name in library_private_names(base):
                return f"{name} is private to {base.__module__}.{base.__qualname__}"
        elif base.__module__ != "builtins":
            own = index.get((base.__module__, base.__qualname__))
            declared_by_us |= own is not None and name in own.declared
    return None if declared_by_us else f"{name} is not declared by {info.qualname} or our bases"


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    name: str
    why: str

    def __str__(self):
        return f"{self.path}:{self.line}: {self.name}: {self.why}"


class Scanner(ast.NodeVisitor):
    def __init__(self, module: Module, *, index: dict, root: Path = ROOT):
        self.module, self.index, self.root = module, index, root
        self.declared = project_declared() | declared_in(module)
        self.findings: list[Finding] = []
        self.class_stack: list[ClassInfo] = []
        self.qual_stack: list[str] = []

    def report(self, node, name, why):
        path = str(self.module.path.relative_to(self.root))
        self.findings.append(Finding(path, node.lineno, name, why))

    # --- structure
    def visit_ClassDef(self, node):
        qualname = ".".join([*self.qual_stack, node.name])
        info = self.module.classes[qualname]
        self.class_stack.append(info)
        self.qual_stack.append(node.name)
        for statement in node.body:
            defined = None
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defined = statement.name
            elif isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target = statement.targets[0]
                defined = target.id if isinstance(target, ast.Name) else None
            if defined and is_private(defined) and defined not in DOCUMENTED:
                why = check_in_class(info, defined, self.index)
                if why and "is private to" in why:
                    self.report(statement, defined, f"overrides a library hook: {why}")
        self.generic_visit(node)
        self.qual_stack.pop()
        self.class_stack.pop()

    def visit_FunctionDef(self, node):
        self.qual_stack.append(f"{node.name}.<locals>")
        self.generic_visit(node)
        self.qual_stack.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    # --- imports
    def visit_Import(self, node):
        for alias in node.names:
            if not is_project_module(alias.name) and any(is_private(p) for p in alias.name.split(".")):
                self.report(node, alias.name, "imports a library's private module")

    def visit_ImportFrom(self, node):
        if node.level or is_project_module(node.module or "") or node.module == "__future__":
            return
        if any(is_private(part) for part in node.module.split(".")):
            self.report(node, node.module, "imports from a library's private module")
        for alias in node.names:
            if is_private(alias.name):
                self.report(node, alias.name, f"imports a private name of {node.module}")

    # --- attribute access
    def visit_Attribute(self, node):
        self.check(node, node.value, node.attr)
        self.generic_visit(node)

    def visit_Call(self, node):
        if (
            isinstance(node.func, ast.Name)
            and node.func.id in ACCESSORS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            self.check(node, node.args[0], node.args[1].value)
        self.generic_visit(node)

    def check(self, node, value, name):
        if not is_private(name) or name in DOCUMENTED:
            return
        if name == "_state":
            parent = getattr(node, "_scan_parent", None)
            if isinstance(parent, ast.Attribute) and parent.attr in DOCUMENTED_STATE:
                return
            self.report(node, name, "Model._state other than .adding/.db")
            return
        owner = self.owner_class(value)
        if owner is not None:
            why = check_in_class(owner, name, self.index)
        elif name in self.declared and name not in library_privates_in_use():
            why = None
        elif name in self.declared:
            why = f"{name} is ours somewhere, but also a library's private name, on an unknown object"
        else:
            why = f"{name} is not an attribute our code declares"
        if why:
            self.report(node, name, why)

    def owner_class(self, value) -> ClassInfo | None:
        """Our class that `value` denotes or is an instance of, when known statically."""
        is_super = (
            isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super"
        )
        if (isinstance(value, ast.Name) and value.id in ("self", "cls")) or is_super:
            return self.class_stack[-1] if self.class_stack else None
        if isinstance(value, ast.Name) and value.id in self.module.own_bindings:
            return self.module.classes[self.module.own_bindings[value.id]]
        return None


def scan() -> list[Finding]:
    findings = []
    for module in modules():
        for node in ast.walk(module.tree):
            for child in ast.iter_child_nodes(node):
                child._scan_parent = node
        scanner = Scanner(module, index=class_index())
        scanner.visit(module.tree)
        findings.extend(scanner.findings)
    return findings


# Public-looking names that reach under Django's database wrapper (issue 19: prepared statements
# only through documented DATABASES options): the driver's raw connection, the wrapper's cursor
# factories and its query log, and the backends' own modules.
DB_WRAPPER_INTERNALS = {"make_cursor", "make_debug_cursor", "queries_log"}


def db_wrapper_findings(module: Module) -> list[Finding]:
    findings = []
    path = str(module.path.relative_to(ROOT))
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Attribute) and node.attr in DB_WRAPPER_INTERNALS:
            findings.append(Finding(path, node.lineno, node.attr, "an internal of Django's database wrapper"))
        elif isinstance(node, ast.Attribute) and node.attr == "connection":
            value = node.value
            if (isinstance(value, ast.Name) and value.id == "connection") or (
                isinstance(value, ast.Subscript)
                and isinstance(value.value, ast.Name)
                and value.value.id == "connections"
            ):
                findings.append(
                    Finding(path, node.lineno, "connection", "the driver connection under Django's")
                )
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("django.db.backends."):
            if (node.module or "").split(".")[-1] == "base":
                findings.append(Finding(path, node.lineno, node.module, "a database backend's own module"))
    return findings


def test_production_code_reaches_under_no_database_wrapper():
    findings = [
        f for m in modules() for f in db_wrapper_findings(m) if (f.path, f.line, f.name) not in ALLOW_LIST
    ]

    assert not findings, "database wrapper internals in production code:\n" + "\n".join(map(str, findings))


def test_the_allow_list_is_empty():
    assert ALLOW_LIST == []


def test_the_scan_reads_every_app_and_resolves_their_classes():
    scanned = modules()

    assert {m.name.split(".")[0] for m in scanned} == set(PROJECT_PACKAGES)
    assert not any("migrations" in m.name for m in scanned)
    # (a concrete model's Meta is consumed by Django's model metaclass: nothing to resolve)
    importable = [
        info
        for m in scanned
        for info in m.classes.values()
        if info.top_level and not info.qualname.endswith(".Meta")
    ]
    assert len(importable) > 100
    assert all(runtime_class(info) is not None for info in importable)


def test_production_code_uses_no_private_api_of_a_library():
    findings = [f for f in scan() if (f.path, f.line, f.name) not in ALLOW_LIST]

    assert not findings, "private API in production code:\n" + "\n".join(map(str, findings))


# --- the scanner itself: what it must catch and what it must leave alone


def scan_source(tmp_path, monkeypatch, source: str) -> list[Finding]:
    """Scan `source` as if it were a production module (importable, so its classes' MROs are walked)."""
    name = f"scanprobe_{tmp_path.name.replace('-', '_')}"
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys.modules[__name__], "PROJECT_PACKAGES", (*PROJECT_PACKAGES, name))
    module = parse_module(path, name)
    index = {**class_index(), **{(name, q): info for q, info in module.classes.items()}}
    for node in ast.walk(module.tree):
        for child in ast.iter_child_nodes(node):
            child._scan_parent = node
    scanner = Scanner(module, index=index, root=tmp_path)
    scanner.visit(module.tree)
    return scanner.findings


@pytest.mark.parametrize(
    "source",
    [
        "from django.db import connection\n\ndef f():\n    return connection.connection._pgconn\n",
        "def f(request):\n    return request._request\n",
        "def f(queryset):\n    return getattr(queryset, '_result_cache')\n",
        "def f(obj):\n    return obj._state.fields_cache\n",
        "from django.utils._os import safe_join\n",
        "from django.utils.functional import _lazy_proxy_unpickle\n",
        # the old cache backend: a subclass of Django's RedisCache reading the client it builds
        "from django.core.cache.backends.redis import RedisCache\n\n"
        "class C(RedisCache):\n    def f(self):\n        return self._cache\n",
        # ... and swapping the client class Django's __init__ assigns
        "from django.core.cache.backends.redis import RedisCache\n\n"
        "class C(RedisCache):\n    def __init__(self, server, params):\n"
        "        super().__init__(server, params)\n        self._class = object\n",
        # overriding Django's private CSRF rejection hook
        "from django.middleware.csrf import CsrfViewMiddleware\n\n"
        "class C(CsrfViewMiddleware):\n    def _reject(self, request, reason):\n        return reason\n",
        # a manager reading the database alias Django keeps on it
        "from django.db import models\n\n"
        "class M(models.Manager):\n    def f(self):\n        return self._db\n",
    ],
)
def test_the_scanner_flags_private_api_of_a_library(tmp_path, monkeypatch, source):
    assert scan_source(tmp_path, monkeypatch, source)


@pytest.mark.parametrize(
    "source",
    [
        "import threading\n\nclass A:\n    def __init__(self):\n        self._lock = threading.Lock()\n"
        "    def f(self):\n        with self._lock:\n            return self._helper()\n"
        "    def _helper(self):\n        return 1\n",
        "from ._common import get_backup\n",
        "from backups.management.commands._common import get_backup\n",
        "def f(job):\n    return job._meta.db_table, job._state.adding, job._state.db\n",
        "class A:\n    @classmethod\n    def _h(cls):\n        return cls._k\n    _k = 1\n\n\nA._h()\n",
        "class A:\n    def _f(self):\n        return 1\n\n\nthe_a = A()\n\ndef g():\n    return the_a._f()\n",
        # a private attribute our own code puts on our own objects (jobs' _loaded_status)
        "def mark(job):\n    job._seen_by_probe = True\n\ndef seen(job):\n    return job._seen_by_probe\n",
        "from rest_framework.views import APIView\n\n"
        "class V(APIView):\n    def get(self, request):\n        return self._our_helper()\n"
        "    def _our_helper(self):\n        return None\n",
    ],
)
def test_the_scanner_leaves_our_own_private_names_alone(tmp_path, monkeypatch, source):
    assert scan_source(tmp_path, monkeypatch, source) == []


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("from django.db import connection\n\ndef f():\n    return connection.connection\n", True),
        (
            "from django.db import connections\n\ndef f():\n    return connections['default'].connection\n",
            True,
        ),
        ("from django.db import connection\n\ndef f(raw):\n    return connection.make_cursor(raw)\n", True),
        ("from django.db import connection\n\ndef f():\n    connection.queries_log[-1]['sql'] = ''\n", True),
        ("from django.db.backends.postgresql.base import ServerBindingCursor\n", True),
        ("from django.db import connection\n\ndef f():\n    return connection.cursor()\n", False),
        ("from django.db.backends.signals import connection_created\n", False),
        ("def f(message):\n    return message.connection\n", False),
    ],
)
def test_the_scanner_flags_reaching_under_the_database_wrapper(tmp_path, source, flagged):
    path = tmp_path / "probe.py"
    path.write_text(source)
    module = parse_module(path, "probe")
    module.path = ROOT / "probe.py"

    assert bool(db_wrapper_findings(module)) is flagged
