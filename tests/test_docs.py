"""README.md and docs/*.md against the code: every `keras-adv` command and
flag, `dev.py` subcommand, script flag, keyword of a keras_adv call,
qualified keras_adv name and `(file.py, name)` pair they mention exists.

CHANGELOG.md is not read: it names removed names on purpose ("was `n`").
A finding that is right as written goes into `IGNORE`, with its reason.
"""

import argparse
import ast
import functools
import importlib
import inspect
import re
from pathlib import Path

import keras
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
PACKAGES = ("attacks", "auditing", "callbacks", "certification", "datasets",
            "defenses", "evaluation", "generative", "layers", "models",
            "poisoning")
# Modules named in the docs as `<module>.<name>` besides the packages.
MODULES = PACKAGES + ("ops", "validation", "reporting", "cli", "commands")
DEV_COMMANDS = ("demo", "test", "bench", "lint", "compat")
# absl's own flags, which every script has.
ABSL_FLAGS = {"help", "helpfull", "helpshort", "flagfile"}
# Flags of other programs (pytest, pip) that a page names on their own.
OTHER_TOOLS = set()

# The classes whose methods a page names bare (`perturb(model, x, y, ...)`).
HOOKS = {"docs/defenses.md": ("keras_adv.defenses.Defense",
                              "keras_adv.defenses.protocol.Regularizer")}

# The keywords a Keras layer or model passes on to Keras.
KERAS_KWARGS = {"name", "dtype", "trainable", "autocast", "input_shape",
                "input_dim", "batch_size", "batch_input_shape", "inputs",
                "outputs", "input_dtype"}

# (file, text in the finding): why the finding is right as written.
IGNORE = {}


def _lines_of(text, offset):
    return text.count("\n", 0, offset) + 1


def snippets(path):
    """`(line, text, language)` of every fenced block (language "" when
    none) and every inline code span (language None) of a Markdown file."""
    text = path.read_text()
    out, prose, block, start, lang = [], [], None, 0, ""
    for number, line in enumerate(text.split("\n"), 1):
        fence = re.match(r"\s*```(\w*)", line)
        if fence and block is None:
            block, start, lang = [], number + 1, fence.group(1)
            prose.append("")
        elif fence:
            out.append((start, "\n".join(block), lang))
            block = None
            prose.append("")
        elif block is not None:
            block.append(line)
            prose.append("")
        else:
            prose.append(line)
    body = "\n".join(prose)
    for m in re.finditer(r"(`+)((?:(?!\n\s*\n).)+?)\1", body, re.DOTALL):
        span = " ".join(m.group(2).split())
        out.append((_lines_of(body, m.start()), span, None))
    return out


def shell_lines(snippet):
    """The logical lines of a snippet (continuations joined), each with the
    line it starts on."""
    line, text, _ = snippet
    parts, first = [], line
    for number, part in enumerate(text.split("\n"), line):
        if not parts:
            first = number
        parts.append(part.rstrip("\\").rstrip())
        if not part.rstrip().endswith("\\"):
            yield first, " ".join(parts)
            parts = []
    if parts:
        yield first, " ".join(parts)


# --- the command line ------------------------------------------------------

def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


@pytest.fixture(scope="module")
def cli_options():
    from keras_adv import cli

    parser = cli.build_parser()
    sub = _subparsers(parser)
    assert set(sub) == set(cli.COMMANDS)
    options = {name: set(p._option_string_actions) for name, p in sub.items()}
    options[None] = set(parser._option_string_actions)
    return options


def _flags(tokens):
    for token in tokens:
        if token in ("|", ";", "&&", ">", "2>", "#") or token.startswith("#"):
            return
        m = re.match(r"--?[a-zA-Z][\w-]*", token.strip("`(),[]"))
        if m:
            yield m.group(0)


def command_findings(where, text, options):
    """Findings of every `keras-adv ...` in `text`."""
    found = []
    pattern = r"^\s*(?:\$\s*)?(?:\S*/)?keras-adv((?:[ \t]+\S+)*)"
    for m in re.finditer(pattern, text, re.M):
        tokens = m.group(1).split()
        if not tokens:
            continue
        name, rest = tokens[0], tokens[1:]
        if name.startswith("-"):
            name, rest = None, tokens
        name = name.rstrip(":") if name else None
        if name and not re.fullmatch(r"[a-z][a-z-]*", name):
            continue  # a placeholder: <command>, COMMAND
        if name not in options:
            found.append(f"{where}: keras-adv has no command {name!r}")
            continue
        found += [f"{where}: keras-adv {name or ''} has no option {flag}"
                  for flag in _flags(rest) if flag not in options[name]]
    return found


def test_keras_adv_commands_and_flags(cli_options):
    """`keras-adv <command> --flag`, and `<command> --flag` in inline code,
    name a command of `keras_adv.cli.COMMANDS` and one of its options."""
    found = []
    for path, line, text, lang in _all_snippets():
        for number, part in shell_lines((line, text, lang)):
            where = f"{_rel(path)}:{number}"
            found += command_findings(where, part, cli_options)
            short = re.match(r"([a-z-]+) (--[\w-]+)", part)
            if lang is None and short and short.group(1) in cli_options:
                if short.group(2) not in cli_options[short.group(1)]:
                    found.append(f"{where}: keras-adv {short.group(1)} has "
                                 f"no option {short.group(2)}")
    _report(found)


def test_every_command_is_documented(cli_options):
    """Each command of `keras_adv.cli.COMMANDS` is shown in README.md and
    in docs/api.md's table of commands."""
    table = _section("docs/api.md", "Commands")
    for command in (c for c in cli_options if c):
        assert f"keras-adv {command}" in (ROOT / "README.md").read_text(), (
            f"README.md does not show keras-adv {command}")
        assert f"| `keras-adv {command} " in table, (
            f"docs/api.md's table of commands lacks keras-adv {command}")


# --- dev.py and the scripts ------------------------------------------------

def script_flags(path):
    """The absl flags a script defines (parsed, not imported)."""
    tree = ast.parse(path.read_text())
    names = set(ABSL_FLAGS)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        fname = getattr(func, "attr", getattr(func, "id", ""))
        if fname.startswith("DEFINE_") and node.args and isinstance(
                node.args[0], ast.Constant):
            names.add(node.args[0].value)
            if fname == "DEFINE_bool":
                names.add("no" + node.args[0].value)
        elif fname == "define_flags":
            kw = {k.arg: k.value for k in node.keywords}
            names |= {"seed"}
            quick = kw.get("quick")
            if not (isinstance(quick, ast.Constant) and quick.value is None):
                names |= {"quick", "noquick"}
            for key in ("out", "num_examples"):
                value = kw.get(key)
                if value is not None and not (
                        isinstance(value, ast.Constant) and value.value is None):
                    names.add(key)
            if isinstance(kw.get("dataset"), ast.Constant) and kw[
                    "dataset"].value:
                names.add("dataset")
    return names


def _script_findings(where, script, tokens):
    path = ROOT / script
    if re.search(r"[A-Z]", script):
        return []  # a placeholder: benchmarks/NAME.py
    if not path.exists():
        return [f"{where}: no script {script}"]
    names = script_flags(path)
    return [f"{where}: {script} has no flag {flag}" for flag in _flags(tokens)
            if flag.startswith("--") and flag[2:].split("=")[0] not in names]


def script_findings(where, text):
    """Findings of `python3 dev.py SUB ...`, `examples/X.py --flag`,
    `benchmarks/X.py --flag` and `-m benchmarks.X --flag` in `text`."""
    found = []
    for m in re.finditer(r"dev\.py\s+(\S+)((?:\s+\S+)*)", text):
        sub, rest = m.group(1).strip("`"), m.group(2).split()
        if sub.startswith("-") or not re.fullmatch(r"[a-z]+", sub):
            continue
        if sub not in DEV_COMMANDS:
            found.append(f"{where}: dev.py has no subcommand {sub!r}")
        elif sub == "demo":
            found += _script_findings(where, "examples/demo.py", rest)
        elif sub == "bench" and rest and re.fullmatch(r"[a-z_0-9]+", rest[0]):
            found += _script_findings(where, f"benchmarks/{rest[0]}.py",
                                      rest[1:])
    pattern = (r"((?:examples|benchmarks)/\w+\.py|-m benchmarks\.\w+)"
               r"((?:\s+\S+)*)")
    for m in re.finditer(pattern, text):
        script = m.group(1)
        if script.startswith("-m"):
            script = script[3:].replace(".", "/") + ".py"
        found += _script_findings(where, script, m.group(2).split())
    return found


def test_dev_py_subcommands_are_dev_pys():
    source = (ROOT / "dev.py").read_text()
    listed = re.search(r"argv\[0\] not in \(([^)]*)\)", source).group(1)
    assert set(re.findall(r'"(\w+)"', listed)) == set(DEV_COMMANDS)


def test_dev_py_and_script_flags():
    """`python3 dev.py SUB` names a subcommand of dev.py; a flag given to
    an example or benchmark is one of the script's absl flags."""
    found = []
    for path, line, text, lang in _all_snippets():
        for number, part in shell_lines((line, text, lang)):
            found += script_findings(f"{_rel(path)}:{number}", part)
    _report(found)


def test_lone_flags_exist_somewhere(cli_options):
    """An inline `--flag` on its own is an option of some `keras-adv`
    command, or a flag of some example or benchmark."""
    known = set().union(*cli_options.values()) | OTHER_TOOLS
    for script in list((ROOT / "examples").glob("*.py")) + list(
            (ROOT / "benchmarks").glob("*.py")):
        known |= {"--" + name for name in script_flags(script)}
    found = []
    for path, line, text, lang in _all_snippets():
        m = re.fullmatch(r"(--[a-z][\w-]*)(?:[ =]\S+)?", text)
        if lang is None and m and m.group(1) not in known:
            found.append(f"{_rel(path)}:{line}: no command or script has "
                         f"the flag {m.group(1)}")
    _report(found)


# --- Python ----------------------------------------------------------------

def _module(name):
    return importlib.import_module(f"keras_adv.{name}")


def resolve(dotted):
    """The object of `keras_adv.a.b.c` (submodules imported as needed);
    raises `LookupError` naming the first missing part."""
    parts = dotted.split(".")
    obj, done = importlib.import_module(parts[0]), parts[0]
    for part in parts[1:]:
        done += "." + part
        if hasattr(obj, part):
            obj = getattr(obj, part)
            continue
        try:
            obj = importlib.import_module(done)
        except ImportError:
            raise LookupError(done) from None
    return obj


@pytest.fixture(scope="module")
def public_names():
    """Every name of the packages' `__all__` (and keras_adv's own), each
    with the objects it may mean."""
    import keras_adv

    names = {}
    for package in PACKAGES:
        module = _module(package)
        for name in getattr(module, "__all__", ()):
            names.setdefault(name, []).append(getattr(module, name))
    for name in keras_adv.__all__:
        names.setdefault(name, []).append(getattr(keras_adv, name))
    return names


class _Env:
    """What the names of one file's Python mean: imports of keras_adv and
    variables holding instances of its classes, block after block."""

    def __init__(self, public, hooks=()):
        self.public, self.bound, self.other = public, {}, set()
        self.instances = {}
        self.hooks = [resolve(name) for name in hooks]

    def learn(self, tree):
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    key = alias.asname or alias.name
                    if node.module.split(".")[0] == "keras_adv":
                        self.bound[key] = f"{node.module}.{alias.name}"
                    else:
                        self.other.add(key)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    key = alias.asname or alias.name.split(".")[0]
                    if alias.name.split(".")[0] != "keras_adv":
                        self.other.add(key)
                    else:
                        self.bound[key] = alias.asname and alias.name or key
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(
                    node.value, ast.Call) and len(node.targets) == 1 and (
                    isinstance(node.targets[0], ast.Name)):
                self._assigned(node.targets[0].id, node.value.func)

    def _assigned(self, name, func):
        """`name = Class(...)` with a keras_adv class: `name.method(...)`
        is checked against the class."""
        self.instances.pop(name, None)
        try:
            objs = self.candidates(func)
        except LookupError:
            return
        classes = [obj for obj in objs if inspect.isclass(obj)]
        if classes:
            self.instances[name] = classes

    def candidates(self, func):
        """The objects a call's function may be (empty: not keras_adv's)."""
        chain = []
        while isinstance(func, ast.Attribute):
            chain.insert(0, func.attr)
            func = func.value
        if not isinstance(func, ast.Name) or func.id in self.other:
            return []
        root = func.id
        if root in self.instances and chain:
            return [_method(cls, chain) for cls in self.instances[root]]
        if root in self.bound:
            bases = [self.bound[root]]
        elif root == "keras_adv" or root in MODULES and chain:
            bases = ["keras_adv" if root == "keras_adv" else
                     f"keras_adv.{root}"]
        elif not chain and root in self.public:
            return self.public[root]
        elif not chain and any(hasattr(c, root) for c in self.hooks):
            return [_method(c, [root]) for c in self.hooks if hasattr(c, root)]
        elif chain and root in self.public:
            return [_attr(obj, chain) for obj in self.public[root]]
        else:
            return []
        return [resolve(".".join(bases + chain))]


def _attr(obj, chain):
    for part in chain:
        if not hasattr(obj, part):
            raise LookupError(f"{getattr(obj, '__name__', obj)}.{part}")
        obj = getattr(obj, part)
    return obj


def _method(cls, chain):
    """`cls`'s attribute as seen from an instance (`self` bound)."""
    obj = _attr(cls, chain)
    static = inspect.getattr_static(cls, chain[0], None)
    if len(chain) == 1 and inspect.isfunction(obj) and not isinstance(
            static, staticmethod):
        return functools.partial(obj, None)
    return obj


def _signature(obj):
    """`inspect.signature`, of `__init__` for a class (a Keras model's own
    reads `(*args, **kwargs)`, from `Layer.__new__`)."""
    if inspect.isclass(obj) and "__init__" in {
            k for c in obj.__mro__[:-1] for k in vars(c)}:
        return inspect.signature(functools.partial(obj.__init__, None))
    return inspect.signature(obj)


def _takes(obj, keywords, positional=0):
    """What is wrong with calling `obj` with `positional` arguments and
    `keywords` (a keyword it lacks, too many positional arguments), or
    None."""
    try:
        signature = _signature(obj)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind_partial(*[None] * positional,
                               **dict.fromkeys(keywords))
    except TypeError as e:
        return str(e)
    if inspect.isclass(obj) and issubclass(obj, keras.layers.Layer):
        extra = set(keywords) - set(signature.parameters) - KERAS_KWARGS
        if extra:  # **kwargs go to Keras, which takes only its own
            return f"unexpected keyword arguments {sorted(extra)}"
    return None


def _name(obj):
    obj = getattr(obj, "func", obj)  # a method with `self` bound
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', obj)}"


def call_findings(where, tree, env):
    """Findings of the calls in `tree` whose function is keras_adv's."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        try:
            objs = env.candidates(node.func)
        except LookupError as e:
            found.append(f"{where}: no such name {e.args[0]}")
            continue
        keywords = [k.arg for k in node.keywords if k.arg]
        args = [a for a in node.args if not (  # `...`: the rest
            isinstance(a, ast.Constant) and a.value is Ellipsis)]
        positional = 0 if any(isinstance(a, ast.Starred) for a in args
                              ) else len(args)
        wrong = [_takes(obj, keywords, positional) for obj in objs]
        if objs and all(wrong):
            found.append(f"{where}: {_name(objs[0])}: {wrong[0]} (as "
                         f"written: {ast.unparse(node)[:80]})")
    return found


def signature_findings(where, text, env, strict=True):
    """A signature written in the docs (`f(x, *, a, b=None)`): every name
    it gives is a parameter of the function (`strict`: the leading ones in
    their places, too)."""
    m = re.fullmatch(r"([\w.]+)\((.*)\)(?:\s*->.*)?", text)
    if not m:
        return []
    try:
        params = re.sub(r"=(?=\s*[,)]|\s*$)", "", m.group(2))
        params = re.sub(r",\s*\.\.\.", "", params)  # "..., " : the rest
        tree = ast.parse(f"def _f({params}): pass")
        func = ast.parse(m.group(1), mode="eval").body
        objs = env.candidates(func)
    except SyntaxError:
        return []
    except LookupError as e:
        return [f"{where}: no such name {e.args[0]}"]
    args = tree.body[0].args
    plain = args.posonlyargs + args.args
    first = [a.arg for a in plain[:len(plain) - len(args.defaults)]]
    named = [a.arg for a in plain[len(first):] + args.kwonlyargs]
    first = [n for n in first if n != "self"]
    wrong = [strict and _named_wrong(obj, first) or _takes(obj, named)
             for obj in objs]
    if objs and all(wrong):
        return [f"{where}: {_name(objs[0])}: {wrong[0]} (as written: "
                f"{text})"]
    return []


def _named_wrong(obj, names):
    """The names given as leading positional parameters that `obj` does not
    have in those places, or None."""
    try:
        params = list(_signature(obj).parameters.values())
    except (TypeError, ValueError):
        return None
    if params and params[-1].kind is params[-1].VAR_POSITIONAL:
        return None
    have = [p.name for p in params if p.kind in (
        p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if names != have[:len(names)]:
        return (f"its positional parameters are ({', '.join(have)}), not "
                f"({', '.join(names)})")
    return None


def python_findings(path, public):
    """Findings of the Python blocks and inline code of one file."""
    env, found = _Env(public, HOOKS.get(_rel(path), ())), []
    for line, text, lang in snippets(path):
        where = f"{_rel(path)}:{line}"
        if lang == "python" or lang is None:
            try:
                tree = ast.parse(text)
            except SyntaxError:
                if lang is None:
                    found += signature_findings(where, text, env)
                continue
            env.learn(tree)
            found += call_findings(where, tree, env)
            if lang is None and "(" in text:  # prose: `f(model, x, ...)`
                found += signature_findings(where, text, env,
                                            strict="..." in text)
    return found


def test_python_calls_match_signatures(public_names):
    """Every keyword of a call of a keras_adv function or class, in Python
    blocks and inline code, is a parameter of it; every name resolves."""
    found = []
    for path in DOCS:
        found += python_findings(path, public_names)
    _report(found)


def test_qualified_names_resolve():
    """`keras_adv.a.b` and `<module>.<name>` (`certification.certify`,
    `validation.EpsRangeWarning`) name something that exists."""
    found = []
    pattern = (r"(?<![\w./-])((?:keras_adv|" + "|".join(MODULES)
               + r")(?:\.[A-Za-z_]\w*)+)")
    for path, line, text, lang in _all_snippets():
        if lang not in (None, "python"):
            continue
        for m in re.finditer(pattern, text):
            dotted = m.group(1)
            if re.search(r"\.(py|md|json|npz|keras|html|png)$", dotted):
                continue
            if not dotted.startswith("keras_adv"):
                dotted = "keras_adv." + dotted
            try:
                resolve(dotted)
            except LookupError as e:
                found.append(f"{_rel(path)}:{line}: no such name {e.args[0]}")
    _report(found)


# --- files and the names said to be in them --------------------------------

def _repo_files():
    skip = {".venv", ".git", "out", "node_modules", "__pycache__"}
    files = []
    for p in ROOT.rglob("*.py"):
        rel = p.relative_to(ROOT)
        if not skip & set(rel.parts) and not rel.parts[0].startswith(".venv"):
            files.append(rel.as_posix())
    return files


def test_named_definitions_exist():
    """A `(`file.py`, `name`)` pair names a file of the repository that
    defines that name (`(`evaluation/run.py`, `evaluate_chunk`)`)."""
    files, found = _repo_files(), []
    for path in DOCS:
        body = path.read_text()
        for m in re.finditer(r"`([\w/]+\.py)`,\s+`(\w+)`", body):
            where = f"{_rel(path)}:{_lines_of(body, m.start())}"
            matches = [f for f in files if f == m.group(1)
                       or f.endswith("/" + m.group(1))]
            if not matches:
                found.append(f"{where}: no file {m.group(1)}")
                continue
            name = re.escape(m.group(2))
            if not any(re.search(rf"^\s*(def|class) {name}\b|^{name} = ",
                                 (ROOT / f).read_text(), re.M)
                       for f in matches):
                found.append(f"{where}: {m.group(1)} defines no "
                             f"{m.group(2)}")
    _report(found)


def test_api_md_shared_options_table(cli_options):
    """docs/api.md's "Every command takes" table: a command that lacks an
    option listed there is named in that option's row."""
    text = (ROOT / "docs/api.md").read_text()
    table = text.split("Every command takes:")[1].split("\n\n")[1]
    commands = [c for c in cli_options if c]
    found = []
    for row in table.splitlines()[2:]:
        flag = re.match(r"\| `(--[\w-]+)`", row)
        if not flag:
            continue
        for command in commands:
            if flag.group(1) not in cli_options[command] and (
                    f"`{command}`" not in row):
                found.append(f"docs/api.md: {command} has no "
                             f"{flag.group(1)}, and its row does not say so")
    _report(found)


def _section(path, title):
    text = (ROOT / path).read_text()
    return text.split(f"## {title}\n")[1].split("\n## ")[0]


def test_audit_md_names_every_audit_option(cli_options):
    """docs/audit.md's "The command" names every option of `keras-adv
    audit`, and only those."""
    named = set(re.findall(r"`(--[a-z][\w-]*)", _section("docs/audit.md",
                                                         "The command")))
    options = {o for o in cli_options["audit"] if o.startswith("--")}
    assert named <= options, f"not options of audit: {named - options}"
    assert options - {"--help"} <= named, (
        f"options of audit that docs/audit.md does not name: "
        f"{options - named - {'--help'}}")


def test_api_md_script_flags_are_the_common_flags():
    """docs/api.md's "Scripts" table lists the flags of
    `examples/common.define_flags`."""
    named = set(re.findall(r"^\| `--(\w+)`", _section("docs/api.md",
                                                     "Scripts"), re.M))
    assert named == script_flags(ROOT / "examples/common.py") - ABSL_FLAGS - {
        "noquick"}


# --- the checker itself ----------------------------------------------------

def test_the_checks_find_what_is_wrong(cli_options, public_names, tmp_path):
    doc = tmp_path / "bad.md"
    doc.write_text(
        "Run `keras-adv evaluate m.keras --n 5` or `keras-adv nothing`.\n\n"
        "```python\nfrom keras_adv import certification\n"
        "certification.certify(m, x, sigma=0.25, n_samples=10)\n"
        "keras_adv.datasets.hide_labels(y, 100)\n"
        "gan = keras_adv.generative.DCGAN((28, 28, 1))\n"
        "gan.generate(n_images=4)\n"
        "keras_adv.models.AdversarialModel(m, defence=None)\n"
        "keras_adv.attacks.no_such_attack(m, x)\n```\n\n"
        "`python3 dev.py deploy` and `examples/demo.py --no_such_flag`;\n"
        "`keras_adv.callbacks.RobustValidation(val_data, ...)`.\n")
    texts = [t for _, t, _ in snippets(doc)]
    found = sum((command_findings("bad.md", t, cli_options) for t in texts),
                [])
    assert any("has no option --n" in f for f in found), found
    assert any("no command 'nothing'" in f for f in found), found
    found = python_findings(doc, public_names)
    assert any("'n_samples'" in f for f in found), found
    assert any("too many positional" in f for f in found), found
    assert any("'n_images'" in f for f in found), found
    assert any("'defence'" in f for f in found), found
    assert any("not (val_data)" in f for f in found), found
    assert any("no_such_attack" in f for f in found), found
    found = sum((script_findings("bad.md", t) for t in texts), [])
    assert any("no subcommand 'deploy'" in f for f in found), found
    assert any("no flag --no_such_flag" in f for f in found), found


# --- helpers ---------------------------------------------------------------

def _rel(path):
    return path.relative_to(ROOT).as_posix() if ROOT in path.parents else (
        path.name)


def _all_snippets():
    for path in DOCS:
        for line, text, lang in snippets(path):
            yield path, line, text, lang


def _report(found):
    kept = [f for f in found if not any(
        f.startswith(file) and text in f for file, text in IGNORE)]
    assert not kept, "docs that are not true:\n" + "\n".join(
        dict.fromkeys(kept))

