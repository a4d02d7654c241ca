"""docs/api.md, executable: every public name follows the argument rules.

The test walks each package's `__all__` (classes and their public methods
included), so a new public function is checked without anyone listing it.
Each rule is a function returning the violations it finds as strings that
name the rule; a violation fails the test with every message at once.
Exceptions, where a rule truly does not fit, are in `EXCEPTIONS` with the
reason.
"""

import dataclasses
import importlib
import inspect

import keras
import pytest

PACKAGES = ("attacks", "auditing", "callbacks", "certification", "datasets",
            "defenses", "evaluation", "generative", "layers", "models",
            "poisoning")

# Names that are data (rule 1): they may be positional. Everything else a
# public function takes is a setting, keyword-only.
DATA = {
    # models and data, docs/api.md's shared names
    "model", "x", "y", "data", "base", "teacher", "student", "classifier",
    "feature_model", "members", "defense",
    # the named data of one operation
    "real", "fake", "generated", "x_labeled", "y_labeled", "x_unlabeled",
    "clean_x", "clean_entropy", "x_target", "certificate", "payoff",
    "images", "feats", "logits", "labels", "path", "values", "name",
    "image_shape", "latent_dim", "mu1", "sigma1", "mu2", "sigma2",
    # the ascent primitives' tensors (attacks.ascend, project_step)
    "objective_fn", "x0", "delta", "grad", "objective",
    # a defense's hooks: the adversarial batch it made is data
    "x_adv",
    # certification's statistics (its paper's names)
    "k", "n",
}

# Keras' own override points keep Keras' signatures.
KERAS_HOOKS = {
    "call", "build", "compile", "compile_from_config", "get_compile_config",
    "compute_loss", "compute_metrics", "compute_output_shape", "train_step",
    "test_step", "fit", "evaluate", "get_config", "from_config", "export",
    "on_train_begin", "on_epoch_end", "get_build_config",
    "build_from_config", "save_own_variables", "load_own_variables",
}

# Defaults of the shared names (docs/api.md, "The shared names" and
# "batch_size per kind of work"), by package.
CLIP = {"attacks": (0.0, 1.0), "defenses": (0.0, 1.0), "poisoning": "auto",
        "certification": None, "callbacks": None, "evaluation": (0.0, 1.0)}
BATCH_SIZE_OF = {"datasets.pseudo_label": 256}  # forward passes only
BATCH_SIZE = {"attacks": None, "poisoning": 256, "generative": 256,
              "certification": 1000, "evaluation": 256, "callbacks": 256,
              "datasets": 128, "defenses": 128, "auditing": None}
# Example caps and counts that have a name of their own in the grammar.
FORBIDDEN_NAMES = {
    "max_examples": "num_examples", "n_examples": "num_examples",
    "num_samples": "num_examples", "limit": "num_examples",
    "box": "clip", "random_state": "seed", "rng": "seed",
    "verbose_progress": "progress", "filepath": "path",
}

# (qualified name, rule) -> why the rule does not fit there.
EXCEPTIONS = {
    ("datasets.load_tf", "settings-keyword-only"):
        "name then split: tfds' own order (load_tf(name), stream_tfds(name, "
        "split)) is data identity, not a setting",
    ("datasets.stream_tfds", "settings-keyword-only"):
        "tfds' (name, split) pair, as tfds.load takes them",
    ("defenses.TrainingStep", "settings-keyword-only"):
        "a record built by AdversarialModel, not a user-facing call",
    ("defenses.Defense.train_step", "settings-keyword-only"):
        "a hook the model calls with its step; not a user call",
    ("defenses.Defense.eps_at", "settings-keyword-only"):
        "epoch is the one argument of a schedule",
    ("defenses.Combined.attack", "settings-keyword-only"):
        "a hook with Defense.attack's signature",
    ("models.AdversarialModel.set_eps_scale", "settings-keyword-only"):
        "the one value a setter sets",
    ("generative.GANMonitor.path_for", "settings-keyword-only"):
        "epoch is the one argument of a file-name rule",
    ("generative.save_image_grid", "settings-keyword-only"):
        "path and images are both data (the file written and what it holds)",
    ("poisoning.Trigger.check_fits", "settings-keyword-only"):
        "the image shape checked is the data",
    ("generative.DCGAN.generate", "settings-keyword-only"):
        "how many images to make is what generate is asked for "
        "(gan.generate(64, seed=0)), as Keras' predict takes its data",
    ("layers.StochasticActivationPruning.draws", "settings-keyword-only"):
        "the one argument of a formula (draws for `units` activations)",
    ("defenses.Combined", "settings-keyword-only"):
        "Combined(defenses) takes its list positionally (docs/api.md rule 1)",
    ("defenses.VAT", "shared-defaults"):
        "VAT's default is no box (docs/api.md: None for certification and "
        "VAT): its perturbation is a direction, not an image",
    ("poisoning.strip_entropy", "shared-defaults"):
        "STRIP overlays float images: (0.0, 1.0) (docs/api.md's clip row)",
    ("poisoning.PoisonScanReport.flagged", "settings-keyword-only"):
        "flagged(method) names the detector whose rows are returned, as a "
        "mapping's key",
    ("attacks.project_step", "eps-needs-clip"):
        "Free-AT's update of a perturbation: the box is applied by the "
        "caller to x + delta",
    ("defenses.adversarial_loss", "eps-needs-clip"):
        "eps overrides the defense's own, which carries its clip",
    ("models.AdversarialModel.export", "shared-names"):
        "keras.Model.export(filepath, format=...): Keras' own override point",
    ("generative.DCGAN.export", "shared-names"):
        "keras.Model.export(filepath, ...): Keras' own override point",
}


def _public():
    """(qualified name, object, package, owner class or None) for every
    public function, class and public method."""
    seen = set()
    for package in PACKAGES:
        module = importlib.import_module(f"keras_adv.{package}")
        names = getattr(module, "__all__", None) or [
            name for name, value in vars(module).items()
            if not name.startswith("_")
            and getattr(value, "__module__", "") == module.__name__]
        for name in names:
            obj = getattr(module, name)
            if id(obj) in seen or not callable(obj):
                continue
            seen.add(id(obj))
            qual = f"{package}.{name}"
            if inspect.isclass(obj):
                if issubclass(obj, BaseException):
                    continue
                yield qual, obj, package, None
                for attr, member in vars(obj).items():
                    if attr.startswith("_"):
                        continue
                    if isinstance(member, (staticmethod, classmethod)):
                        member = member.__func__
                    if inspect.isfunction(member):
                        yield f"{qual}.{attr}", member, package, obj
            elif inspect.isfunction(obj):
                yield qual, obj, package, None


def _parameters(obj):
    """The parameters a caller passes (no self/cls, no *args/**kwargs)."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    params = list(signature.parameters.values())
    if params and params[0].name in ("self", "cls"):
        params = params[1:]
    return [p for p in params if p.kind not in (p.VAR_POSITIONAL,
                                                p.VAR_KEYWORD)]


def _is_keras_object(obj):
    return inspect.isclass(obj) and issubclass(obj, keras.layers.Layer)


def rule_settings_keyword_only(qual, obj, package, owner):
    """Rule 1: data positional, every setting keyword-only (a Keras layer
    or model may take its one defining setting positionally)."""
    if qual.rsplit(".", 1)[-1] in KERAS_HOOKS and owner is not None:
        return []
    if inspect.isclass(obj) and (
            issubclass(obj, tuple) or (dataclasses.is_dataclass(obj)
                                       and not hasattr(obj, "get_config"))):
        return []  # reports and records: built by the package, fields
    positional = [p for p in _parameters(obj)
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    settings = [p.name for p in positional if p.name not in DATA]
    if _is_keras_object(obj) and len(settings) <= 1:
        return []
    if settings:
        return [f"{qual}: settings-keyword-only: {settings} can be passed "
                "positionally; put them after `*`"]
    return []


def rule_seed_none(qual, obj, package, owner):
    """Rule 3: `seed=None` means the global generator; never a fixed
    default."""
    for p in _parameters(obj):
        if p.name == "seed" and p.default is not None:
            return [f"{qual}: seed-none: seed defaults to {p.default!r}, not "
                    "None"]
    return []


def rule_counts(qual, obj, package, owner):
    """Rule 2: `num_examples` is the only example cap; `n`/`n0` are only
    certification's noise counts."""
    found = []
    for p in _parameters(obj):
        takes_sigma = any(q.name == "sigma" for q in _parameters(obj))
        if p.name in ("n", "n0") and not (package == "certification"
                                          or takes_sigma):
            found.append(f"{qual}: counts: `{p.name}` is certification's "
                         "noise count only; name this count for what it "
                         "counts")
        if p.name in FORBIDDEN_NAMES:
            found.append(f"{qual}: shared-names: `{p.name}` is spelled "
                         f"`{FORBIDDEN_NAMES[p.name]}` in this package")
    return found


def rule_shared_defaults(qual, obj, package, owner):
    """The shared names with their documented defaults: from_logits=None,
    progress=None, clip and batch_size per kind of work."""
    found = []
    for p in _parameters(obj):
        default = p.default
        if p.name in ("from_logits", "progress") and default is not None:
            found.append(f"{qual}: shared-defaults: {p.name} defaults to "
                         f"{default!r}, not None")
        if p.name == "clip" and package in CLIP and owner is None and (
                default is not p.empty and default != CLIP[package]):
            found.append(f"{qual}: shared-defaults: clip defaults to "
                         f"{default!r}; {package} uses {CLIP[package]!r}")
        if p.name == "batch_size" and package in BATCH_SIZE and (
                default is not p.empty
                and default not in (BATCH_SIZE_OF.get(
                    qual, BATCH_SIZE[package]), None)):
            found.append(f"{qual}: shared-defaults: batch_size defaults to "
                         f"{default!r}; {package} uses "
                         f"{BATCH_SIZE[package]!r}")
    return found


def rule_eps_needs_clip(qual, obj, package, owner):
    """A function that perturbs inputs within `eps` takes the box `clip`."""
    names = {p.name for p in _parameters(obj)}
    if "eps" in names and "clip" not in names and owner is None and not (
            inspect.isclass(obj)):
        return [f"{qual}: eps-needs-clip: perturbs inputs (eps) but takes no "
                "clip"]
    return []


def rule_documented(qual, obj, package, owner):
    """Rule 5: every public function documents what it returns, with an
    example."""
    if owner is not None or inspect.isclass(obj):
        return []
    doc = inspect.getdoc(obj) or ""
    found = []
    if "Returns:" not in doc and "Returns" not in doc:
        found.append(f"{qual}: documented: the docstring has no Returns "
                     "section")
    if "Example" not in doc and ">>>" not in doc:
        found.append(f"{qual}: documented: the docstring has no Example")
    return found


RULES = (rule_settings_keyword_only, rule_seed_none, rule_counts,
         rule_shared_defaults, rule_eps_needs_clip, rule_documented)


def violations():
    """Every violation of every rule, less the listed exceptions."""
    found = []
    for qual, obj, package, owner in _public():
        for rule in RULES:
            for message in rule(qual, obj, package, owner):
                name = message.split(": ")[1]
                if (qual, name) not in EXCEPTIONS:
                    found.append(message)
    return found


def test_public_names_follow_docs_api():
    found = violations()
    assert not found, "docs/api.md's rules broken:\n" + "\n".join(found)


def test_the_walk_sees_the_public_api():
    names = {qual for qual, *_ in _public()}
    assert len(names) > 150
    for name in ("attacks.pgd", "certification.certify",
                 "poisoning.scan_training_set", "models.AdversarialModel",
                 "layers.StochasticActivationPruning.draws"):
        assert name in names


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_every_rule_can_fail(rule):
    """Each rule catches a function written against it."""

    def bad(model, x, eps, seed=1, n=3, from_logits=False,
            batch_size=7, clip=(0, 2), box=None):
        """No sections."""

    def unboxed(model, x, *, eps):
        """Returns: x. Example: unboxed(m, x, eps=0.1)"""

    assert rule("attacks.bad", bad, "attacks", None) or rule(
        "attacks.unboxed", unboxed, "attacks", None)
